"""Read the pixels of a scanned series into one preallocated array, in parallel.

The volume array is allocated once; every frame is written straight into its slice. For
uncompressed little-endian files the scanner recorded where PixelData starts, so the bytes are
read with ``readinto`` directly into the array (no intermediate copies, no pydicom parse).
Everything else (compressed syntaxes through pylibjpeg, big endian, multi-frame objects) is
decoded by pydicom and copied into place. Rescale slope/intercept are applied per frame
afterwards, in place: int16 when the rescaled values are integers that fit, float32 only when
needed. A gantry-tilted series is then shifted slice by slice onto an orthogonal grid
(``app.core.tilt``; float32, a new array); any other series is handed over as read.
"""

from __future__ import annotations

import mmap
import os
import re
import sys
import warnings
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import ExplicitVRLittleEndian

from app.core.provenance import UNKNOWN_GENERATOR, Provenance
from app.core.study import FrameRef, SeriesInfo
from app.core.tilt import TiltCorrection, correct_tilt, plan_tilt_correction
from app.core.volume import Geometry, Volume
from app.io.dicom_colour import is_colour_series, read_colour_series
from app.io.errors import LoadError
from app.io.memory import check_fits_in_memory
from app.io.pixel_decoders import DecodeError, decode_pixels

_PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"
_MAX_WORKERS = min(8, (os.cpu_count() or 2) + 2)


def load_series(
    series: SeriesInfo,
    max_workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Volume:
    """The series as a Volume (voxels[k, j, i], LPS geometry). Raises ``LoadError``.

    ``progress(frames_read, frames_total)`` is called (from this thread) as frames arrive.

    Stored values are read in parallel into one array of the stored type; the rescale is then
    applied in place (int16 when the rescaled values are integers that fit, which is the usual
    CT/MR case), so the peak memory stays close to the volume's own size.
    """
    if is_colour_series(series):
        # RGB voxels as shown (no rescale, no window); a tilt is not resampled in colour.
        return _volume(series, read_colour_series(series))
    if series.bits_allocated not in (1, 8, 16, 32):
        raise LoadError(f"series {series.uid}: {series.bits_allocated}-bit pixels are not supported")
    correction = tilt_correction(series)  # None for an untilted series: read exactly as before
    columns, rows, slices = series.size_ijk
    stored = _stored_dtype(series)
    # The stored array, and a float32 one beside it when the rescale or a tilt needs one (a tilt
    # grows the grid to hold every shifted slice: a corrupt position can make that grid huge).
    grid_columns, grid_rows = correction.size_ij if correction is not None else (columns, rows)
    check_fits_in_memory(
        Path(series.frames[0].path).name,
        f"{columns} x {rows} x {slices} voxels of {series.bits_allocated} bits"
        + (f" on a {grid_columns} x {grid_rows} tilt-corrected grid" if correction is not None else ""),
        columns * rows * slices * stored.itemsize + grid_columns * grid_rows * slices * 4,
    )
    voxels = empty_volume((slices, rows, columns), stored)
    ranges = np.zeros((slices, 2), dtype=np.float64)  # per-slice stored min, max
    done = np.zeros(slices, dtype=bool)  # slices already rescaled to int16 by their reader
    raw_jobs: list[tuple[int, FrameRef]] = []
    decode_jobs: dict[str, list[tuple[int, FrameRef]]] = defaultdict(list)
    for k, frame in enumerate(series.frames):
        if frame.pixel_offset >= 0 and series.bits_allocated in (8, 16):
            raw_jobs.append((k, frame))
        else:
            decode_jobs[frame.path].append((k, frame))
    workers = max_workers or _MAX_WORKERS
    with ThreadPoolExecutor(max_workers=workers) as pool:
        frames_of = {
            pool.submit(_read_raw_chunk, series, voxels, ranges, done, part): len(part)
            for part in _chunks(raw_jobs, workers)
        }
        frames_of.update(
            {
                pool.submit(_decode_file, series, voxels, ranges, path, jobs): len(jobs)
                for path, jobs in decode_jobs.items()
            }
        )
        frames_read = 0
        for future in as_completed(frames_of):
            future.result()  # re-raises the first LoadError
            frames_read += frames_of[future]
            if progress is not None:
                progress(frames_read, slices)
        voxels = _apply_rescale(voxels, ranges, series.frames, done, pool, workers)
        if series.modality_lut is not None:
            voxels = apply_lut(voxels, *series.modality_lut)
        if correction is None:
            return _volume(series, voxels)
        # Gantry tilt: rescaled slices shifted in plane onto an orthogonal grid (float32).
        fill_value = float(voxels.min())
        voxels = correct_tilt(voxels, correction, fill_value, pool.map)
    volume = _volume(series, voxels, correction.origin_lps_mm)
    volume.tilt_correction = correction.record(fill_value)
    return volume


def apply_lut(stored: np.ndarray, first: int, table: tuple[float, ...]) -> np.ndarray:
    """A Modality LUT: stored values below ``first`` take the first entry, above the end the last."""
    values = np.asarray(table)
    dtype = np.int32 if np.all(values == np.round(values)) else np.float32
    index = np.clip(stored.astype(np.int64) - first, 0, len(values) - 1)
    return values.astype(dtype)[index]


def tilt_correction(series: SeriesInfo) -> TiltCorrection | None:
    """How the series' slices must be shifted in plane to sit on an orthogonal grid, or None."""
    direction = np.asarray(series.direction, dtype=float)
    return plan_tilt_correction(
        [frame.position_lps_mm for frame in series.frames],
        direction[:, 0],
        direction[:, 1],
        series.spacing_mm[:2],
        series.size_ijk[:2],
    )


def _chunks(jobs: list, workers: int) -> list[list]:
    size = max(1, len(jobs) // (workers * 4) + 1)
    return [jobs[i : i + size] for i in range(0, len(jobs), size)]


def rescaled_dtype(ranges: np.ndarray, frames: list[FrameRef]) -> np.dtype:
    """int16 when every rescaled value is an integer that fits, else int32, else float32."""
    slopes = np.array([f.rescale_slope for f in frames])
    intercepts = np.array([f.rescale_intercept for f in frames])
    if np.any(slopes != np.round(slopes)) or np.any(intercepts != np.round(intercepts)):
        return np.dtype(np.float32)
    ends = ranges * slopes[:, None] + intercepts[:, None]
    low, high = float(min(ends.min(), 0)), float(ends.max())
    for candidate in (np.int16, np.int32):
        info = np.iinfo(candidate)
        if info.min <= low and high <= info.max:
            return np.dtype(candidate)
    return np.dtype(np.float32)


HUGE_PAGE_SAFE_BYTES = 4 << 20  # NumPy asks for huge pages from this size up


def empty_volume(shape: tuple[int, ...], dtype) -> np.ndarray:
    """``np.empty`` for a volume, in memory the kernel does not gather into transparent huge pages.

    NumPy advises huge pages for large arrays, and under Linux's usual 'madvise' defrag setting
    the kernel may then compact memory inside the allocation: the same 200 MB load took 0.1 to
    0.6 s of system time from one run to the next. Anonymous mmap pages are plain 4 KiB pages,
    zero-filled on first touch and unmapped with the array.
    """
    nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    if nbytes < HUGE_PAGE_SAFE_BYTES or not sys.platform.startswith("linux"):
        return np.empty(shape, dtype=dtype)
    return np.frombuffer(mmap.mmap(-1, nbytes), dtype=dtype).reshape(shape)


def _apply_rescale(
    voxels: np.ndarray, ranges: np.ndarray, frames: list[FrameRef], done: np.ndarray, pool, workers: int
) -> np.ndarray:
    """Rescale the slices the readers left as stored values; ``done`` slices already hold int16."""
    target = rescaled_dtype(ranges, frames)
    pending_max = float(ranges[~done, 1].max()) if np.any(~done) else 0.0
    if target == np.int16 and voxels.dtype.itemsize == 2 and pending_max <= 32767:
        output = voxels.view(np.int16)  # same bits for these values: rescale in place, no copy
        if voxels.dtype == np.int16 and np.all(done | _is_identity(frames)):
            return voxels
    else:
        output = empty_volume(voxels.shape, target)
    in_place = np.shares_memory(output, voxels)

    def rescale(part: list[int]) -> None:
        for k in part:
            if in_place:
                if not done[k]:
                    _rescale_in_place(output[k], frames[k])
            elif done[k]:
                np.copyto(output[k], voxels[k].view(np.int16), casting="unsafe")
            else:
                np.copyto(output[k], voxels[k], casting="unsafe")
                _rescale_in_place(output[k], frames[k])

    for future in [pool.submit(rescale, part) for part in _chunks(list(range(len(frames))), workers)]:
        future.result()
    return output


def _is_identity(frames: list[FrameRef]) -> np.ndarray:
    return np.array([f.rescale_slope == 1.0 and f.rescale_intercept == 0.0 for f in frames])


def _volume(series: SeriesInfo, voxels: np.ndarray, origin_lps_mm=None) -> Volume:
    origin = series.origin_lps_mm if origin_lps_mm is None else origin_lps_mm
    geometry = Geometry(np.asarray(origin), np.asarray(series.spacing_mm), np.asarray(series.direction))
    metadata = {**series.metadata, "SeriesInstanceUID": series.series_instance_uid}
    rescale_type = str(series.metadata.get("RescaleType", ""))
    units = "HU" if series.modality == "CT" and rescale_type in ("", "HU") else rescale_type
    if units == "US":  # DICOM's "unspecified": no unit to show (it would read as ultrasound)
        units = ""
    if series.modality == "RTDOSE":  # DoseGridScaling applied: the values are doses
        units = _DOSE_UNITS.get(str(series.metadata.get("DoseUnits", "")).upper(), "dose (units not stated)")
    return Volume(
        voxels=voxels,
        geometry=geometry,
        modality=series.modality,
        units=units,
        name=series.description or f"Series {series.number or series.uid}",
        provenance=series_provenance(series),
        metadata=metadata,
        source_path=str(Path(series.frames[0].path).parent),
        load_warnings=tuple(series.warnings),
    )


_DOSE_UNITS = {"GY": "Gy", "RELATIVE": "relative dose"}


# Provenance.derivation_description's line: what SynthView wrote before its provenance record
# (app.io.dicom_provenance), read back so that a re-export repeats it.
_DERIVATION = re.compile(
    r"^Synthesized by (?P<name>\S+) (?P<version>\S+)(?: \((?P<task>[^)]*)\))?"
    r"(?:; weights sha256 (?P<weights>[0-9A-Fa-f]*); device (?P<device>[^;]*);"
    r" seed (?P<seed>-?\d+|None); (?P<created>[^;]+))?"
)


def series_provenance(series: SeriesInfo) -> Provenance | None:
    """A series marked synthetic stays synthetic when it is read back.

    SynthView's own series carry their whole provenance record; older ones (and copies whose
    private block an archive dropped) only the derivation description, which names the plugin;
    for series written by other software the generator is unknown but the volume is still
    synthetic.
    """
    if str(series.metadata.get("SyntheticData", "")).strip().upper() != "YES":
        return None
    if series.recorded_provenance is not None:
        return series.recorded_provenance
    return provenance_from_description(str(series.metadata.get("DerivationDescription", "")))


def provenance_from_description(description: str) -> Provenance:
    """The provenance a synthetic series' derivation description tells (the fallback for series
    written before SynthView recorded it whole, and for other software's)."""
    match = (
        None
        if description.startswith(f"Synthesized by {UNKNOWN_GENERATOR}")
        else _DERIVATION.match(description)
    )
    if match:
        details = {}
        if match["created"]:
            details = {
                "weights_sha256": match["weights"],  # the 16-character prefix the line holds
                "device": match["device"],
                "seed": None if match["seed"] == "None" else int(match["seed"]),
                "created_utc": match["created"].strip(),
            }
        return Provenance(
            plugin_name=match["name"],
            plugin_version=match["version"],
            task=match["task"] or "",
            source_description=description,
            **details,
        )
    return Provenance(plugin_name=UNKNOWN_GENERATOR, plugin_version="", source_description=description)


def _stored_dtype(series: SeriesInfo) -> np.dtype:
    kind = "i" if series.pixel_representation else "u"
    return np.dtype(f"{kind}{max(series.bits_allocated // 8, 1)}")


def _read_raw_chunk(
    series: SeriesInfo,
    voxels: np.ndarray,
    ranges: np.ndarray,
    done: np.ndarray,
    jobs: list[tuple[int, FrameRef]],
) -> None:
    """Read uncompressed frames straight into their slices (little endian, stored dtype).

    While a slice is still in cache, an integer rescale whose result fits int16 is applied
    in place (the usual CT case); ``done[k]`` records it.
    """
    int16 = np.iinfo(np.int16)
    _, rows, columns = voxels.shape
    expected = rows * columns * voxels.dtype.itemsize
    explicit = series.transfer_syntax_uid == ExplicitVRLittleEndian
    for k, frame in jobs:
        name = Path(frame.path).name
        try:
            with open(frame.path, "rb") as handle:
                handle.seek(frame.pixel_offset)
                header = handle.read(12 if explicit else 8)
                if len(header) < 8 or header[:4] != _PIXEL_DATA_TAG:
                    raise LoadError(f"{name}: no pixel data in this file")
                length = int.from_bytes(header[8:12] if explicit else header[4:8], "little")
                if length < expected:
                    raise LoadError(f"{name}: pixel data holds {length} bytes, {expected} expected")
                read = handle.readinto(memoryview(voxels[k]).cast("B"))
        except OSError as error:
            raise LoadError(f"{name}: cannot read ({error})") from error
        if read != expected:
            raise LoadError(f"{name}: file is truncated ({read} of {expected} pixel bytes present)")
        _fix_high_bits(voxels[k], series)
        low, high = voxels[k].min(), voxels[k].max()
        ranges[k] = low, high
        slope, intercept = frame.rescale_slope, frame.rescale_intercept
        if (
            voxels.dtype.itemsize == 2
            and high <= int16.max
            and slope == round(slope)
            and intercept == round(intercept)
        ):
            ends = (low * slope + intercept, high * slope + intercept)
            if int16.min <= min(ends) and max(ends) <= int16.max and int16.min <= high * slope <= int16.max:
                _rescale_in_place(voxels[k].view(np.int16), frame)
                done[k] = True


def _fix_high_bits(pixels: np.ndarray, series: SeriesInfo) -> None:
    """Clear bits above BitsStored (unsigned) or sign-extend from them (signed), in place."""
    unused = series.bits_allocated - series.bits_stored
    if unused <= 0 or series.bits_allocated < 8:
        return
    if series.pixel_representation:
        pixels <<= unused
        pixels >>= unused  # arithmetic shift on a signed array: sign extension
    else:
        pixels &= (1 << series.bits_stored) - 1


def _rescale_in_place(plane: np.ndarray, frame: FrameRef) -> None:
    if frame.rescale_slope != 1.0:
        plane *= plane.dtype.type(frame.rescale_slope)
    if frame.rescale_intercept != 0.0:
        plane += plane.dtype.type(frame.rescale_intercept)


def _missing_pixel_data_reason(path: str) -> str:
    """Why pydicom found no Pixel Data: a compressed element cut short (pydicom drops an
    encapsulated Pixel Data whose end delimiter the file never reaches), or none at all."""
    with open(path, "rb") as handle:
        data = handle.read()
    start = data.find(b"\xe0\x7f\x10\x00")
    if start >= 0 and data[start + 8 : start + 12] == b"\xff\xff\xff\xff":
        return (
            f"file is truncated: its compressed pixel data stops after {len(data) - start - 12} bytes, "
            "before the end of the data (an interrupted copy or transfer?)"
        )
    return "no pixel data in this file"


def _decode_file(
    series: SeriesInfo, voxels: np.ndarray, ranges: np.ndarray, path: str, jobs: list[tuple[int, FrameRef]]
) -> None:
    """Decode a file with pydicom (compressed syntaxes via pylibjpeg) and place its frames."""
    name = Path(path).name
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dataset = pydicom.dcmread(path)
            if "PixelData" not in dataset:
                raise LoadError(f"{name}: {_missing_pixel_data_reason(path)}")
            pixels = decode_pixels(dataset)
    except LoadError:
        raise
    except DecodeError as error:
        raise LoadError(f"{name}: cannot decode pixel data ({error})") from error
    except Exception as error:  # noqa: BLE001 - a corrupt file read by pydicom; report it
        raise LoadError(f"{name}: cannot read pixel data ({type(error).__name__}: {error})") from error
    _, rows, columns = voxels.shape
    multi = any(frame.frame_index is not None for _, frame in jobs)
    if multi and pixels.ndim == 2:
        pixels = pixels[np.newaxis]
    for k, frame in jobs:
        if multi and frame.frame_index >= len(pixels):
            raise LoadError(f"{name}: frame {frame.frame_index + 1} is missing ({len(pixels)} decoded)")
        plane = pixels[frame.frame_index] if multi else pixels
        if plane.shape != (rows, columns):
            raise LoadError(f"{name}: decoded image is {plane.shape}, header says {(rows, columns)}")
        np.copyto(voxels[k], plane, casting="unsafe")
        ranges[k] = plane.min(), plane.max()
