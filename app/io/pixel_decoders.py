"""Decode untrusted compressed pixel data without ever taking the process down.

pydicom tries its decoders in a fixed order, GDCM first. GDCM throws C++ exceptions that nothing
catches on inconsistent files (a JPEG-LS or JPEG 2000 codestream whose size or components differ
from Rows / Columns / SamplesPerPixel): ``terminate called``, SIGABRT, and the viewer is gone.
So the decoders that raise Python errors (pylibjpeg's, pyjpegls, Pillow, pydicom's RLE) are
tried first, and GDCM only when none of them handles the syntax (the installed bundle, which
leaves out the GPL libjpeg, decodes JPEG Lossless with it), and then only for JPEG and JPEG-LS
codestreams whose frame headers (SOF) agree with the DICOM header, checked here first, and in a
child process (GDCM also aborts on combinations no header check foresees, e.g. BitsStored 1 in
an 8-bit lossless file): a crash there fails this file's decoding, not the application.
Rust decoders (pylibjpeg-rle) report bad data as a pyo3 ``PanicException``, which derives from
``BaseException``: it is caught and reported like any decoder error.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np
import pydicom
from pydicom.encaps import generate_frames
from pydicom.pixels import get_decoder
from pydicom.uid import UID

LAST_RESORT = "gdcm"
_JPEG_EXTENDED = "1.2.840.10008.1.2.4.51"
_JPEG_FAMILY = {
    "1.2.840.10008.1.2.4.50",  # baseline 8-bit
    "1.2.840.10008.1.2.4.51",  # extended 12-bit
    "1.2.840.10008.1.2.4.57",  # lossless
    "1.2.840.10008.1.2.4.70",  # lossless, first-order prediction
    "1.2.840.10008.1.2.4.80",  # JPEG-LS lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS near-lossless
}
# Start-of-frame markers: JPEG (C0-CF less DHT C4, JPG C8, DAC CC) and JPEG-LS (F7).
_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7}
_NOT_CAUGHT = (KeyboardInterrupt, SystemExit, GeneratorExit)


class DecodeError(ValueError):
    """The pixel data cannot be decoded; the message says why (one line)."""


def decoder_plugins(syntax: str) -> list[str]:
    """The installed decoders for a syntax, in the order they are tried (GDCM last, if at all)."""
    try:
        available = list(get_decoder(UID(syntax)).available_plugins)
    except (NotImplementedError, ValueError):
        return []
    safe = [name for name in available if name != LAST_RESORT]
    if safe:
        return safe
    return [LAST_RESORT] if LAST_RESORT in available and syntax in _JPEG_FAMILY else []


def decode_pixels(dataset: pydicom.Dataset) -> np.ndarray:
    """``dataset.pixel_array``, decoded by the safest installed decoder. Raises ``DecodeError``."""
    meta = getattr(dataset, "file_meta", None)
    syntax = UID(str(meta.get("TransferSyntaxUID", ""))) if meta is not None else UID("")
    if not syntax.is_compressed:
        return _guarded(lambda: dataset.pixel_array)
    plugins = decoder_plugins(syntax)
    if not plugins:
        raise DecodeError(f"no installed decoder for {syntax.name or syntax or 'this transfer syntax'}")
    problems = []
    for plugin in plugins:
        if plugin == LAST_RESORT:
            fault = codestream_fault(dataset)
            if fault:
                raise DecodeError(fault)
            return decode_in_child(dataset)
        try:
            dataset.pixel_array_options(decoding_plugin=plugin)
            return _guarded(lambda: dataset.pixel_array)
        except DecodeError as error:
            problems.append(f"{plugin}: {error}")
    if syntax == _JPEG_EXTENDED and _gdcm_installed() and not codestream_fault(dataset):
        # 12-bit extended JPEG: pydicom's plugins refuse it (libjpeg rejects common encoder
        # quirks, pydicom's GDCM plugin any 12-bit data); GDCM's own reader decodes it, as dcmtk
        # and ITK do. In the child process, like every GDCM decode.
        try:
            return decode_in_child(dataset, _gdcm_reader_decode)
        except DecodeError as error:
            problems.append(f"GDCM reader: {error}")
    raise DecodeError("; ".join(problems))


def _guarded(decode) -> np.ndarray:
    try:
        return decode()
    except _NOT_CAUGHT:
        raise
    except BaseException as error:  # noqa: BLE001 - decoders raise anything, Rust panics included
        raise DecodeError(f"{type(error).__name__}: {error}") from error


def codestream_fault(dataset: pydicom.Dataset) -> str:
    """Why the JPEG / JPEG-LS frames disagree with the header (size, components, precision), or ""."""
    rows, columns = int(dataset.Rows), int(dataset.Columns)
    samples = int(dataset.get("SamplesPerPixel", 1) or 1)
    bits_allocated = int(dataset.get("BitsAllocated", 8) or 8)
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    seen = 0
    try:
        for index, frame in enumerate(generate_frames(dataset.PixelData, number_of_frames=frames)):
            header = _start_of_frame(frame)
            if header is None:
                return f"frame {index + 1}: no JPEG frame header"
            precision, height, width, components = header
            if (height, width) != (rows, columns):
                return f"frame {index + 1} is {width} x {height}, the header says {columns} x {rows}"
            if components != samples:
                return f"frame {index + 1} has {components} component(s), the header says {samples}"
            if not 2 <= precision <= min(bits_allocated, 16):
                return f"frame {index + 1} has {precision}-bit samples, the header allocates {bits_allocated}"
            seen += 1
            if seen > frames:
                break
    except _NOT_CAUGHT:
        raise
    except BaseException as error:  # noqa: BLE001 - malformed encapsulation
        return f"malformed compressed pixel data ({type(error).__name__}: {error})"
    if seen != frames:
        return f"the pixel data holds {seen} frame(s), the header says {frames}"
    return ""


def _start_of_frame(data: bytes) -> tuple[int, int, int, int] | None:
    """(precision, lines, samples per line, components) of a JPEG or JPEG-LS codestream's SOF."""
    if data[:2] != b"\xff\xd8":
        return None
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        if marker in _SOF_MARKERS:
            if position + 10 > len(data) or length < 8:
                return None
            segment = data[position + 4 : position + 10]
            return (
                segment[0],
                int.from_bytes(segment[1:3], "big"),
                int.from_bytes(segment[3:5], "big"),
                segment[5],
            )
        if marker == 0xDA or length < 2:  # scan data before any frame header
            return None
        position += 2 + length
    return None


_CHILD_LOCK = threading.Lock()
_child_pool: ProcessPoolExecutor | None = None


def decode_in_child(dataset: pydicom.Dataset, decode=None) -> np.ndarray:
    """Decode with GDCM in a long-lived child process; its death is this file's ``DecodeError``."""
    global _child_pool
    decode = decode or _gdcm_decode
    if isinstance(dataset.filename, str) and os.path.isfile(dataset.filename):
        with open(dataset.filename, "rb") as handle:  # as read: re-encoding can fail on odd elements
            data = handle.read()
    else:
        buffer = io.BytesIO()
        dataset.save_as(buffer, enforce_file_format=False)
        data = buffer.getvalue()
    with _CHILD_LOCK:
        if _child_pool is None:
            _child_pool = ProcessPoolExecutor(
                max_workers=min(4, os.cpu_count() or 1),  # a series' files decode in parallel
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_quiet_child,
            )
        pool = _child_pool
    try:
        return pool.submit(decode, data).result()
    except BrokenProcessPool:
        with _CHILD_LOCK:
            if _child_pool is pool:
                _child_pool = None
        raise DecodeError("the GDCM decoder crashed on this file") from None
    except DecodeError:
        raise
    except Exception as error:  # noqa: BLE001 - e.g. the child could not start
        raise DecodeError(f"{type(error).__name__}: {error}") from error


def _quiet_child() -> None:
    """GDCM's abort text ("terminate called ...") is not the user's business: the error says it."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)


def _gdcm_decode(data: bytes) -> np.ndarray:
    """In the child: decode a whole file with GDCM (errors come back as ``DecodeError``)."""
    dataset = pydicom.dcmread(io.BytesIO(data))
    dataset.pixel_array_options(decoding_plugin=LAST_RESORT)
    return _guarded(lambda: dataset.pixel_array)


def _gdcm_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("gdcm") is not None


def _gdcm_reader_decode(data: bytes) -> np.ndarray:
    """In the child: decode a whole file with GDCM's ImageReader (frames, rows, columns[, samples])."""
    import tempfile

    import gdcm

    dataset = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    with tempfile.NamedTemporaryFile(suffix=".dcm") as handle:
        handle.write(data)
        handle.flush()
        reader = gdcm.ImageReader()
        reader.SetFileName(handle.name)
        if not reader.Read():
            raise DecodeError("GDCM cannot read this file")
        image = reader.GetImage()
        buffer = image.GetBuffer()
    raw = buffer.encode("utf-8", errors="surrogateescape") if isinstance(buffer, str) else bytes(buffer)
    bits = int(dataset.get("BitsAllocated", 16) or 16)
    signed = int(dataset.get("PixelRepresentation", 0) or 0)
    dtype = np.dtype(f"{'i' if signed else 'u'}{max(bits // 8, 1)}")
    rows, columns = int(dataset.Rows), int(dataset.Columns)
    samples = int(dataset.get("SamplesPerPixel", 1) or 1)
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    expected = frames * rows * columns * samples * dtype.itemsize
    if len(raw) < expected:
        raise DecodeError(f"GDCM decoded {len(raw)} bytes, {expected} expected")
    shape = (frames, rows, columns) + ((samples,) if samples > 1 else ())
    pixels = np.frombuffer(raw[:expected], dtype=dtype).reshape(shape)
    return pixels[0] if frames == 1 else pixels
