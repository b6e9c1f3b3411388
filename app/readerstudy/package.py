"""Blinding: turn a study definition into a reading package that readers open.

Layout written by ``create_study(definition, out_dir, ...)``::

    out_dir/truth/truth.json      coordinator only (folder 0700, file 0600): opaque ids -> source
                                  paths, truth, modality, finding, the pair-side key (the only
                                  place the truth is written)
    out_dir/answers.db            default SQLite database (WAL) unless a URL is given: the
                                  package and the readers' answers, no truth
    out_dir/reading/study.json    what the reading session opens: questions, options, items
    out_dir/reading/images/<opaque id>.nii   uncompressed, so a file's size says nothing

What is normalised or stripped from every image a reader sees, so nothing but the pixels can
tell synthetic from real: file name and path (opaque random ids), series description, UIDs and
every header field (only voxels and geometry are kept), provenance and its sidecar, the plugin
name, the data type (all float32), and optionally the voxel spacing (``common_spacing_mm``) and
the value range (``intensity_normalisation: percentile``: each case's 1st-99th percentiles mapped
to a common range and quantised alike, so offsets, scale and quantisation say nothing).
The item list in ``study.json`` is sorted by opaque id, so its order carries no truth; modality
names (which may be plugin names) stay in the truth file. The written package is then audited
(``app.readerstudy.audit``) and refused when a feature still separates the classes perfectly.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.core.resample import resample_onto
from app.core.volume import Geometry, Volume
from app.io.atomic import atomic_folder
from app.readerstudy.audit import HINTS, AuditImage, AuditReport, HeaderFields, audit_images
from app.readerstudy.definition import BLINDING_ONLY_OPTIONS, StudyDefinition, StudyOptions
from app.readerstudy.storage import StudyStore
from app.readerstudy.truth import TRUTH_DIR, TRUTH_FILE, write_truth

PACKAGE_FILE = "study.json"
READING_DIR = "reading"
DEFAULT_DATABASE = "answers.db"
INTENSITY_LEVELS = 4096  # 12 bits, as CT and most MR series store
FEW_LEVELS = 64  # an automatic level count below this is said (it may show as banding)
IMAGE_SUFFIX = ".nii"  # uncompressed: the file size depends on the grid only

LoadVolume = Callable[[Path], Volume]
SaveVolume = Callable[[Volume, Path], object]


@dataclass
class CreatedStudy:
    study_id: str
    reading_dir: Path
    truth_path: Path
    database_url: str
    warnings: list[str] = field(default_factory=list)
    audit: AuditReport | None = None


def opaque_id(prefix: str) -> str:
    """A random identifier that says nothing about the case (not derived from names or order)."""
    return f"{prefix}{secrets.token_hex(4).upper()}"


def pair_side_swapped(study_seed: int, blinding_key: str, case_id: str) -> bool:
    """Whether a 2AFC pair's images are stored partner first: one bit per pair drawn from the study
    seed and the coordinator's blinding key, so ``image_ids`` (in study.json, the database and every
    reader's order record) never follows the definition's ``path`` / ``paired_path`` order."""
    digest = hashlib.sha256(f"{study_seed}:{blinding_key}:{case_id}".encode()).digest()
    return bool(digest[0] & 1)


def normalise_intensity(
    voxels: np.ndarray,
    percentiles: tuple[float, float] = (1.0, 99.0),
    value_range: tuple[float, float] = (0.0, 4095.0),
    levels: int = INTENSITY_LEVELS,
) -> np.ndarray:
    """Map the case's own [low, high] percentiles to ``value_range``, clip, and quantise to
    ``levels`` evenly spaced values (whole numbers for the default 0-4095).

    Every case then spans the same range with the same quantisation, whatever its source's
    offset, scale, units or data type (integers for acquired, continuous values for generated
    images). Non-finite voxels become the low end. float32 out."""
    values = np.asarray(voxels, dtype=np.float64)
    finite = np.isfinite(values)
    low_out, high_out = float(value_range[0]), float(value_range[1])
    out = np.full(values.shape, low_out, dtype=np.float64)
    if finite.any():
        low, high = np.percentile(values[finite], [float(percentiles[0]), float(percentiles[1])])
        if high > low:
            out[finite] = (values[finite] - low) * ((high_out - low_out) / (high - low)) + low_out
        np.clip(out, low_out, high_out, out=out)
        step = (high_out - low_out) / (levels - 1)
        out = np.round((out - low_out) / step) * step + low_out
        if step >= 1 and float(low_out).is_integer() and float(high_out).is_integer():
            out = np.round(out)  # whole-number levels (still one common set of values)
    return out.astype(np.float32)


def fillable_levels(voxels: np.ndarray, percentiles: tuple[float, float] = (1.0, 99.0)) -> int:
    """The most evenly spaced levels this image fills, every one, once its [low, high] percentile
    window is spread over them: 1 + 1 / (the widest gap between its distinct values in the window,
    as a fraction of the window). An acquired image with few distinct values (8-bit, or integers
    scaled up) fills few; a generated one with continuous values fills thousands."""
    values = np.asarray(voxels, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 1
    low, high = np.percentile(values, [float(percentiles[0]), float(percentiles[1])])
    if not high > low:
        return 1
    inside = np.unique(np.clip(values, low, high))
    widest = float(np.max(np.diff(inside))) / (high - low)
    return int(np.floor((1.0 - 1e-9) / widest)) + 1


def common_level_count(per_image: list[int], requested: int | None) -> int:
    """One level count for every image: the requested one, else the most every image fills
    (capped at ``INTENSITY_LEVELS``), so that no image has fewer distinct values than another:
    the number of levels then says nothing about the source."""
    if requested:
        return int(requested)
    # A constant (blank) image fills one level whatever is chosen: it must not flatten the rest.
    fillable = [n for n in per_image if n >= 2]
    return int(max(2, min(INTENSITY_LEVELS, min(fillable, default=INTENSITY_LEVELS))))


def _resampled_grid(volume: Volume, spacing_mm: float) -> tuple[Geometry, tuple[int, int, int]]:
    """The grid at ``spacing_mm`` (isotropic) that covers the volume's extent, same direction."""
    low, high = volume.bounds_lps_mm()
    spacing = np.full(3, float(spacing_mm))
    extent = np.abs(volume.geometry.direction.T @ (high - low))
    size_ijk = np.floor(extent / spacing + 1e-6).astype(int) + 1  # stays inside the source
    geometry = Geometry(volume.geometry.origin_lps_mm, spacing, volume.geometry.direction)
    return geometry, (int(size_ijk[2]), int(size_ijk[1]), int(size_ijk[0]))


def _centre_on_shape(volume: Volume, shape_kji: tuple[int, int, int]) -> tuple[Volume, np.ndarray]:
    """Pad (with the image's lowest value) or crop, centred, to ``shape_kji``, and the shift (LPS
    mm) that moves the source's content to where it now lies. The grid keeps the source's origin,
    so how much an image was padded does not show in its header (the truth file's findings are
    shifted alike)."""
    source = np.asarray(volume.voxels)
    finite = source[np.isfinite(source)]
    fill = float(finite.min()) if finite.size else 0.0
    out = np.full(shape_kji, fill, dtype=np.float32)
    start = [(s - d) // 2 for s, d in zip(source.shape, shape_kji, strict=True)]  # kji; < 0 pads
    src, dst = [], []
    for first, size, target in zip(start, source.shape, shape_kji, strict=True):
        lo, hi = max(first, 0), min(first + target, size)
        src.append(slice(lo, hi))
        dst.append(slice(lo - first, hi - first))
    out[tuple(dst)] = source[tuple(src)]
    moved_from = np.asarray(volume.geometry.lps_from_index([start[2], start[1], start[0]]), dtype=float)
    shift = np.asarray(volume.geometry.origin_lps_mm, dtype=float) - moved_from
    return Volume(out, volume.geometry, volume.modality, volume.units, volume.name), shift


def blinded_volume(
    volume: Volume,
    image_id: str,
    common_spacing_mm: float | None = None,
    options: StudyOptions | None = None,
    levels: int | None = None,
    shape_kji: tuple[int, int, int] | None = None,
) -> Volume:
    """The pixels and geometry only, as float32, named by the opaque id, no provenance or header
    values but the flag every package image carries (``blinded_study_image``: may be synthetic);
    resampled to ``common_spacing_mm``, padded or cropped to ``shape_kji`` and intensity-normalised
    onto ``levels`` evenly spaced values as ``options`` say."""
    if common_spacing_mm is None and options is not None:
        common_spacing_mm = options.common_spacing_mm
    if common_spacing_mm:
        geometry, grid_shape = _resampled_grid(volume, common_spacing_mm)
        volume = resample_onto(volume, geometry, grid_shape, fill_value=0.0)
    shift = np.zeros(3)
    if shape_kji is not None and tuple(volume.shape_kji) != tuple(shape_kji):
        volume, shift = _centre_on_shape(volume, shape_kji)
    if options is not None and options.intensity_normalisation == "percentile":
        voxels = normalise_intensity(
            volume.voxels,
            options.intensity_percentiles,
            options.intensity_range,
            levels or options.intensity_levels or INTENSITY_LEVELS,
        )
    else:
        voxels = np.asarray(volume.voxels, dtype=np.float32).copy()
    geometry = volume.geometry
    # The one mark every package image carries alike: outside the study it may be synthetic.
    return Volume(
        voxels=voxels,
        geometry=geometry,
        name=image_id,
        metadata={"shift_lps_mm": shift.tolist()},  # read back by the packager, never saved
        blinded_study_image=True,
    )


def _load(load_volume: LoadVolume, definition: StudyDefinition, case, path: str) -> Volume:
    try:
        return load_volume(definition.resolve(path))
    except Exception as error:  # a loader may raise anything: name the case, not a traceback
        raise ValueError(f"case {case.id}: cannot load {path}: {error}") from None


@dataclass(frozen=True)
class PackageGrid:
    """What every image of a package shares: the level count and (optionally) the array shape."""

    levels: int | None
    shape_kji: tuple[int, int, int] | None


def _common_grid(jobs: list, definition: StudyDefinition, load_volume: LoadVolume) -> PackageGrid:
    """A first pass over the sources, when the options ask for a level count or shape shared by
    every image: each one's fillable levels and (resampled) shape."""
    options = definition.options
    auto_levels = options.intensity_normalisation == "percentile" and not options.intensity_levels
    if not (auto_levels or options.common_shape):
        return PackageGrid(None, None)
    levels, shapes = [], []
    for case, path, _, _ in jobs:
        volume = _load(load_volume, definition, case, path)
        shape = tuple(volume.shape_kji)
        if options.common_spacing_mm:
            shape = _resampled_grid(volume, options.common_spacing_mm)[1]
            if auto_levels:
                geometry, grid_shape = _resampled_grid(volume, options.common_spacing_mm)
                volume = resample_onto(volume, geometry, grid_shape, fill_value=0.0)
        shapes.append(shape)
        if auto_levels:
            levels.append(fillable_levels(volume.voxels, options.intensity_percentiles))
    common_shape = tuple(int(x) for x in np.max(shapes, axis=0)) if options.common_shape else None
    return PackageGrid(common_level_count(levels, None) if auto_levels else None, common_shape)


def _write_images(
    jobs: list,
    definition: StudyDefinition,
    images_dir: Path,
    load_volume: LoadVolume,
    save_volume: SaveVolume,
) -> tuple[PackageGrid, dict[str, list[float]]]:
    """Load and write every image, in a random order: file times and inode numbers follow the
    writing order and readers can list them, so case, truth or pair order must not show there.
    Uncompressed NIfTI: a file's size then depends on its grid only, never on its content.
    (``images_dir`` is inside the partial reading folder: a failure leaves no orphans.)"""
    jobs = list(jobs)
    secrets.SystemRandom().shuffle(jobs)
    shifts: dict[str, list[float]] = {}
    grid = _common_grid(jobs, definition, load_volume)
    for case, path, _, image_id in jobs:
        volume = _load(load_volume, definition, case, path)
        blinded = blinded_volume(
            volume, image_id, options=definition.options, levels=grid.levels, shape_kji=grid.shape_kji
        )
        save_volume(blinded, images_dir / f"{image_id}{IMAGE_SUFFIX}")
        shifts[image_id] = blinded.metadata["shift_lps_mm"]
    return grid, shifts


class BlindingLeakError(ValueError):
    """The package would let an adversary tell real from synthetic without looking: not shipped."""

    def __init__(self, report: AuditReport) -> None:
        super().__init__(report.leak_message())
        self.report = report


def _audit_written(
    items: list[dict],
    truth_items: dict,
    images_dir: Path,
    load_volume: LoadVolume,
    header_fields: HeaderFields | None,
) -> AuditReport:
    images = []
    for position, item in enumerate(sorted(items, key=lambda i: i["item_id"])):
        truth = truth_items[item["item_id"]]
        for image_id in item["image_ids"]:
            if truth["synthetic_image_id"]:
                label = "synthetic" if image_id == truth["synthetic_image_id"] else "real"
            else:
                label = truth["truth"]
            images.append(AuditImage(images_dir / f"{image_id}{IMAGE_SUFFIX}", label, position))
    return audit_images(images, load_volume, header_fields)


def _warnings(report: AuditReport) -> list[str]:
    return [
        f"every real case differs from every synthetic one in {f.feature}"
        + (f" ({HINTS[f.feature]})" if f.feature in HINTS else "")
        for f in report.perfect()
    ]


def create_study(
    definition: StudyDefinition,
    out_dir: str | Path,
    load_volume: LoadVolume,
    save_volume: SaveVolume,
    database: str | Path | None = None,
    replace: bool = False,
    accept_leaks: bool = False,
    header_fields: HeaderFields | None = None,
) -> CreatedStudy:
    """Write the blinded reading package and truth file, and register the study in the database.

    The reading folder is filled beside its place and renamed when the truth file is written and
    the study registered (``app.io.atomic``): a failed or killed run leaves no half package.
    ``replace`` lets it replace an earlier package and truth file (the caller's ``--force``).
    The written package is audited first (``app.readerstudy.audit``); when a file-level or simple
    image feature separates real from synthetic perfectly, with enough cases for that to be a
    leak, nothing is kept and BlindingLeakError says which feature (``accept_leaks`` ships it).
    The written images are read back with ``load_volume``; ``header_fields`` (the NIfTI reader's,
    from app.io) lets the audit compare every header field on its own as well.
    """
    definition.validate()
    out_dir = Path(out_dir)
    reading_dir = out_dir / READING_DIR
    earlier = [reading_dir, out_dir / TRUTH_DIR, out_dir / TRUTH_FILE] + (
        [out_dir / DEFAULT_DATABASE] if database is None else []
    )
    if not replace and any(path.exists() for path in earlier):
        raise FileExistsError(
            f"{out_dir} already holds a study (reading package, truth file or answers database)"
        )
    with atomic_folder(reading_dir, replace=replace) as partial:
        return _create_study(
            definition, out_dir, partial, load_volume, save_volume, database, accept_leaks, header_fields
        )


def _create_study(
    definition: StudyDefinition,
    out_dir: Path,
    partial_reading_dir: Path,
    load_volume: LoadVolume,
    save_volume: SaveVolume,
    database: str | Path | None,
    accept_leaks: bool = False,
    header_fields: HeaderFields | None = None,
) -> CreatedStudy:
    reading_dir = out_dir / READING_DIR
    images_dir = partial_reading_dir / "images"
    images_dir.mkdir()
    study_id = opaque_id("S")
    # Coordinator-only: with the (public) study seed it decides each pair's sides, so readers,
    # who see the seed, cannot recompute them.
    blinding_key = secrets.token_hex(16)
    items, truth_items, jobs = [], {}, []
    for case in definition.cases:
        item_id = opaque_id("K")
        sources = [(case.path, case.truth)]
        if case.paired_path:
            other = "real" if case.truth == "synthetic" else "synthetic"
            sources.append((case.paired_path, other))
        if len(sources) == 2 and pair_side_swapped(definition.seed, blinding_key, case.id):
            sources.reverse()
        image_ids = [opaque_id("I") for _ in sources]
        jobs += [
            (case, path, truth, image_id) for (path, truth), image_id in zip(sources, image_ids, strict=True)
        ]
        synthetic_image = next(
            (i for (_, t), i in zip(sources, image_ids, strict=True) if t == "synthetic"), None
        )
        item = {"item_id": item_id, "image_ids": image_ids, "practice": case.practice}
        if case.practice and definition.options.practice_feedback:
            # Shown to the reader after their answer: the synthetic image of a pair, or the
            # case's truth (practice cases only; never analysed, never an analysed case's truth).
            item["practice_answer"] = synthetic_image if case.paired_path else case.truth
        items.append(item)
        truth_items[item_id] = {
            "case": case.id,
            "sources": [str(definition.resolve(p)) for p, _ in sources],
            "truth": case.truth,
            "synthetic_image_id": synthetic_image if case.paired_path else None,
            "modality": case.modality,
            "mrmc_case": case.mrmc_case or case.id,
            "practice": case.practice,
            "finding_lps_mm": None
            if case.finding_lps_mm is None
            else [float(x) for x in case.finding_lps_mm],
            "tolerance_mm": float(definition.options.localisation_tolerance_mm),
        }
    grid, shifts = _write_images(jobs, definition, images_dir, load_volume, save_volume)
    for item in items:  # a finding moves with the content of its (single) image
        finding = truth_items[item["item_id"]]["finding_lps_mm"]
        if finding is not None:
            moved = np.add(finding, shifts[item["image_ids"][0]])
            truth_items[item["item_id"]]["finding_lps_mm"] = [float(x) for x in moved]
    report = _audit_written(items, truth_items, images_dir, load_volume, header_fields)
    if report.leaks() and not accept_leaks:
        raise BlindingLeakError(report)  # the partial reading folder goes with it
    options = {k: v for k, v in definition.to_dict()["options"].items() if k not in BLINDING_ONLY_OPTIONS}
    package = {
        "format": "synthview-reading-package/1",
        "study_id": study_id,
        "seed": definition.seed,
        "questions": definition.to_dict()["questions"],
        "options": options,
        "items": sorted(items, key=lambda item: item["item_id"]),
        "database": f"../{DEFAULT_DATABASE}" if database is None else None,
        "image_suffix": IMAGE_SUFFIX,
    }
    (partial_reading_dir / PACKAGE_FILE).write_text(json.dumps(package, indent=2), encoding="utf-8")
    truth_path = write_truth(
        out_dir / TRUTH_DIR / TRUTH_FILE,
        study_id,
        definition.name,
        truth_items,
        {"blinding_key": blinding_key},
    )
    store = StudyStore(database if database is not None else out_dir / DEFAULT_DATABASE)
    try:
        store.register_study(study_id, package)
        url = store.url
    finally:
        store.close()
    warnings = _warnings(report)
    if grid.levels is not None and grid.levels < FEW_LEVELS:
        warnings.append(
            f"every image was quantised onto {grid.levels} levels: the coarsest source fills no more"
            " (a level count every image fills keeps the number of distinct values from telling"
            " real from synthetic; set intensity_levels to choose another)"
        )
    return CreatedStudy(study_id, reading_dir, truth_path, url, warnings, report)


def load_package(reading_dir: str | Path) -> tuple[dict, Path]:
    """The reading package (``study.json``) of a reading folder or file, and its folder."""
    path = Path(reading_dir)
    if path.is_dir():
        if not (path / PACKAGE_FILE).exists() and (path / "reading" / PACKAGE_FILE).exists():
            # The study folder `study create` wrote, which also holds the truth: readers get its
            # reading/ subfolder.
            raise ValueError(f"{path} is the coordinator's study folder; readers open {path / 'reading'}")
        path = path / PACKAGE_FILE
    try:
        package = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"not a reading package: {path} ({error})") from None
    if package.get("format") != "synthview-reading-package/1":
        raise ValueError(f"not a reading package: {path}")
    return package, path.parent
