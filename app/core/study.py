"""What a folder scan found: studies, their series and the files that were skipped.

Plain, Qt-free data: the scanner in ``app.io.dicom_scan`` fills it from headers only, the pixel
loader reads the frames it lists, and the CLI and the study browser display it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from app.core.messages import one_line
from app.core.provenance import Provenance

# The patient and study a volume belongs to: what a synthesized volume inherits from its input
# (the plugin runtime) and keeps in its NIfTI sidecar (app.io.nifti), so that it is filed under
# its source patient and study.
SOURCE_STUDY_KEYS = (
    "PatientName",
    "PatientID",
    "StudyInstanceUID",
    "StudyDescription",
    "StudyDate",
    "FrameOfReferenceUID",
)


def source_study(metadata: dict) -> dict:
    """The patient and study values (``SOURCE_STUDY_KEYS``) among a volume's ``metadata``: what a
    volume derived from it (a synthesized image, a map) carries to be filed with it."""
    return {key: metadata[key] for key in SOURCE_STUDY_KEYS if metadata.get(key)}


@dataclass(frozen=True)
class FrameRef:
    """One 2D image on disk: a single-frame file, or frame ``frame_index`` of a multi-frame file.

    ``pixel_offset`` is the byte offset of the PixelData element in an uncompressed file (known
    from the header scan), or -1 when the pixels must be decoded by pydicom.
    """

    path: str
    frame_index: int | None  # None: single-frame file
    position_lps_mm: tuple[float, float, float]
    rescale_slope: float = 1.0
    rescale_intercept: float = 0.0
    pixel_offset: int = -1


@dataclass
class SeriesInfo:
    """One loadable series: frames sorted along the slice normal, with their common geometry.

    ``uid`` is the key to load it by: the SeriesInstanceUID, with ``#2``, ``#3``... appended
    for the further parts of a DICOM series that had to be split (mixed orientation, image size
    or acquisition). ``series_instance_uid`` is always the DICOM value.
    """

    uid: str
    series_instance_uid: str
    study_uid: str
    modality: str
    description: str
    number: int | None
    patient_name: str
    patient_id: str
    date: str  # YYYYMMDD as in DICOM ("" when unknown)
    size_ijk: tuple[int, int, int]  # columns, rows, slices
    spacing_mm: tuple[float, float, float]  # column spacing, row spacing, slice spacing
    origin_lps_mm: tuple[float, float, float]
    direction: tuple[tuple[float, ...], ...]  # 3x3 rows; columns are the i, j, k unit vectors
    frames: list[FrameRef] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Pixel format shared by the frames (checked by the scanner).
    bits_allocated: int = 16
    bits_stored: int = 16
    pixel_representation: int = 0  # 0 unsigned, 1 signed
    samples_per_pixel: int = 1
    photometric: str = "MONOCHROME2"
    transfer_syntax_uid: str = ""
    metadata: dict = field(default_factory=dict)  # a few header values carried to the Volume
    synthetic: bool = False  # any instance marked synthetic (app.io.dicom_marking)
    # The provenance record SynthView wrote into a synthetic series (app.io.dicom_provenance);
    # None for other software's series and for SynthView's before the record existed.
    recorded_provenance: Provenance | None = None
    # Modality LUT Sequence: output value of stored values first, first + 1, ... (None: rescale).
    modality_lut: tuple[int, tuple[float, ...]] | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        """(columns, rows, slices): the size shown to users, same order as the spacing."""
        return self.size_ijk

    @property
    def files(self) -> list[str]:
        """The files of the series, in slice order, each once."""
        return list(dict.fromkeys(frame.path for frame in self.frames))

    @property
    def orientation(self) -> str:
        """Patient directions of i, j, k, e.g. 'LPS' for a standard axial series."""
        letters = []
        for column in range(3):
            vector = [self.direction[row][column] for row in range(3)]
            axis = max(range(3), key=lambda a: abs(vector[a]))
            letters.append(("LPS" if vector[axis] > 0 else "RAI")[axis])
        return "".join(letters)


@dataclass
class StudyInfo:
    uid: str
    description: str
    patient_name: str
    patient_id: str
    date: str
    series: list[SeriesInfo] = field(default_factory=list)


@dataclass(frozen=True)
class SkippedFile:
    """A file a scan left out; ``reason`` is one readable line (hostile bytes stripped)."""

    path: str
    reason: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "reason", one_line(self.reason))


@dataclass
class ScanResult:
    """Studies found under a path plus every file that was skipped, with the reason.

    Iterating over it (or ``len``) goes over the studies, so it can stand where a list of
    studies is expected.
    """

    studies: list[StudyInfo] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)

    def __iter__(self):
        return iter(self.studies)

    def __len__(self) -> int:
        return len(self.studies)

    def __getitem__(self, index: int) -> StudyInfo:
        return self.studies[index]

    def all_series(self) -> list[SeriesInfo]:
        return [series for study in self.studies for series in study.series]

    def find_series(self, uid: str) -> SeriesInfo | None:
        """The series with key ``uid``; a DICOM SeriesInstanceUID picks its largest part."""
        everything = self.all_series()
        for series in everything:
            if series.uid == uid:
                return series
        parts = [s for s in everything if s.series_instance_uid == uid]
        return max(parts, key=lambda s: len(s.frames)) if parts else None


def series_to_open(studies, path: str | Path) -> SeriesInfo | None:
    """The series that opening ``path`` shows first, among its scan's ``studies`` (a
    ``ScanResult`` or a list of ``StudyInfo``): for a file, the series one of whose frames it is;
    for a folder, the series with the most frames, the first scanned among equals. None: no
    series (or a file in none of them). Series that list no frames (another scanner's) count as
    empty."""
    every_series = [series for study in studies for series in getattr(study, "series", ())]
    target = Path(path)
    if target.is_file():
        target = target.resolve()
        holding = (
            s for s in every_series if any(Path(frame.path).resolve() == target for frame in getattr(s, "frames", ()))
        )
        return next(holding, None)
    return max(every_series, key=lambda series: len(getattr(series, "frames", ())), default=None)
