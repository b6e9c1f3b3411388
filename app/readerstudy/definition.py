"""Study definition: the coordinator's file (YAML or JSON) naming cases, truth, questions, options.

This file holds the truth and the source paths; readers never open it. ``study create`` turns it
into a blinded reading package (``app.readerstudy.package``).

Example (YAML)::

    name: Brain MRI visual Turing test
    seed: 20261123
    options: {allow_answer_modification: false, allow_case_navigation: false,
              window_level_locked: false, allow_scroll: true, time_limit_s: null}
    questions:
      - {id: call, type: real_synthetic, text: "Real or synthetic?", scale: "1-5"}
      - {id: quality, type: likert, text: "Image quality"}
      - {id: comment, type: free_text, required: false}
    cases:
      - {id: r1, path: real/r1.nii.gz, truth: real}
      - {id: s1, path: synthetic/s1.nii.gz, truth: synthetic, modality: gan-a}
      - {id: p1, path: real/r2.nii.gz, truth: real, paired_path: synthetic/s2.nii.gz}
      - {id: warmup, path: real/r3.nii.gz, truth: real, practice: true}
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

QUESTION_TYPES = ("real_synthetic", "two_afc", "likert", "free_text", "localise")
CONFIDENCE_SCALES = ("1-5", "0-100")
TRUTH_VALUES = ("real", "synthetic")
IMAGE_SUFFIXES = (".nii", ".nii.gz", ".dcm", ".nrrd", ".mha", ".mhd")


class StudyDefinitionError(ValueError):
    """A study definition that cannot be used, with the reason in words."""


@dataclass
class Question:
    id: str
    type: str
    text: str = ""
    scale: str = "1-5"  # confidence scale of real_synthetic / two_afc questions
    required: bool = True

    def default_text(self) -> str:
        """The wording readers see; it avoids the word the blinding rules keep off the screen."""
        return (
            self.text
            or {
                "real_synthetic": "Is this image real or computer-generated?",
                "two_afc": "Which of the two images is computer-generated?",
                "likert": "Image quality (1 = non-diagnostic, 5 = excellent)",
                "free_text": "Comments",
                "localise": "Click on the most suspicious location (optional)",
            }[self.type]
        )


@dataclass
class CaseSpec:
    id: str
    path: str
    truth: str  # "real" or "synthetic" (of ``path``; a paired image has the other truth)
    modality: str = "default"
    mrmc_case: str = ""  # the same case read under several modalities shares this key
    practice: bool = False
    paired_path: str = ""  # 2AFC: shown beside ``path``
    # Where the case's marked finding is (LPS mm, in the image's own world frame; kept in the
    # truth file only): a localise click within the study's tolerance of it is a hit.
    finding_lps_mm: list[float] | None = None


@dataclass
class StudyOptions:
    shuffle: bool = True
    allow_answer_modification: bool = False
    allow_case_navigation: bool = False
    window_level_locked: bool = False
    allow_scroll: bool = True
    time_limit_s: float | None = None
    # After each practice answer, show the truth (practice cases only; never the analysed ones).
    practice_feedback: bool = False
    common_spacing_mm: float | None = None  # resample every case to this isotropic spacing
    # "percentile": rescale each case's [low, high] percentiles to ``intensity_range`` (clipped,
    # quantised to 4096 levels, float32), so value range, offset and quantisation say nothing.
    intensity_normalisation: str = "none"
    intensity_percentiles: list[float] = field(default_factory=lambda: [1.0, 99.0])
    intensity_range: list[float] = field(default_factory=lambda: [0.0, 4095.0])
    # Evenly spaced values every normalised image is quantised onto; None: the most that every
    # image of the study fills, so the number of distinct values says nothing about the source.
    intensity_levels: int | None = None
    common_shape: bool = False  # pad (or crop), centred, every case to one array shape
    localisation_tolerance_mm: float = 10.0  # a click this close to the marked finding is a hit


BLINDING_ONLY_OPTIONS = (
    "common_spacing_mm",
    "common_shape",
    "intensity_levels",
    "intensity_normalisation",
    "intensity_percentiles",
    "intensity_range",
    "localisation_tolerance_mm",
)  # applied when the package is written (or in the analysis); not in what readers open
INTENSITY_NORMALISATIONS = ("none", "percentile")


@dataclass
class StudyDefinition:
    name: str
    seed: int
    questions: list[Question]
    cases: list[CaseSpec]
    options: StudyOptions = field(default_factory=StudyOptions)
    base_dir: str = "."  # relative case paths are taken from here (the definition's folder)

    def resolve(self, path: str) -> Path:
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else Path(self.base_dir) / candidate

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("base_dir")
        return data

    def validate(self) -> None:
        """Raise StudyDefinitionError naming the first problem found."""
        if not self.name.strip():
            raise StudyDefinitionError("the study needs a name")
        if not self.questions:
            raise StudyDefinitionError("the study needs at least one question")
        question_ids = [q.id for q in self.questions]
        if len(set(question_ids)) != len(question_ids):
            raise StudyDefinitionError("question ids must be unique")
        for question in self.questions:
            if question.type not in QUESTION_TYPES:
                raise StudyDefinitionError(
                    f"question {question.id}: type {question.type!r} is not one of {', '.join(QUESTION_TYPES)}"
                )
            if question.type in ("real_synthetic", "two_afc") and question.scale not in CONFIDENCE_SCALES:
                raise StudyDefinitionError(f"question {question.id}: scale must be 1-5 or 0-100")
        if not self.cases:
            raise StudyDefinitionError("the study has no cases")
        case_ids = [c.id for c in self.cases]
        if len(set(case_ids)) != len(case_ids):
            raise StudyDefinitionError("case ids must be unique")
        has_pairs = any(c.paired_path for c in self.cases)
        has_singles = any(not c.paired_path for c in self.cases)
        types = {q.type for q in self.questions}
        if has_pairs and "two_afc" not in types:
            raise StudyDefinitionError("paired cases need a two_afc question")
        if has_singles and "two_afc" in types and types == {"two_afc"}:
            raise StudyDefinitionError("single cases need a question other than two_afc")
        for case in self.cases:
            if case.truth not in TRUTH_VALUES:
                raise StudyDefinitionError(f"case {case.id}: truth must be 'real' or 'synthetic'")
            for path in filter(None, (case.path, case.paired_path)):
                if not self.resolve(path).exists():
                    raise StudyDefinitionError(f"case {case.id}: image not found: {path}")
        if not any(not c.practice for c in self.cases):
            raise StudyDefinitionError("every case is a practice case: nothing to analyse")
        if self.options.time_limit_s is not None and self.options.time_limit_s <= 0:
            raise StudyDefinitionError("time_limit_s must be positive")
        self._validate_blinding_options()
        for case in self.cases:
            if case.finding_lps_mm is not None:
                try:
                    valid = len(case.finding_lps_mm) == 3 and all(
                        math.isfinite(float(x)) for x in case.finding_lps_mm
                    )
                except (TypeError, ValueError):
                    valid = False
                if not valid:
                    raise StudyDefinitionError(
                        f"case {case.id}: finding_lps_mm must be three numbers (L, P, S mm)"
                    )

    def _validate_blinding_options(self) -> None:
        options = self.options
        if options.intensity_normalisation not in INTENSITY_NORMALISATIONS:
            raise StudyDefinitionError(
                f"intensity_normalisation must be one of {', '.join(INTENSITY_NORMALISATIONS)}"
            )
        try:
            low_pct, high_pct = (float(x) for x in options.intensity_percentiles)
            low, high = (float(x) for x in options.intensity_range)
        except (TypeError, ValueError):
            raise StudyDefinitionError(
                "intensity_percentiles and intensity_range are two numbers each"
            ) from None
        if not 0 <= low_pct < high_pct <= 100:
            raise StudyDefinitionError("intensity_percentiles must rise within 0-100")
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise StudyDefinitionError("intensity_range must be two finite rising numbers")
        if options.intensity_levels is not None and not (
            isinstance(options.intensity_levels, int) and 2 <= options.intensity_levels <= 65536
        ):
            raise StudyDefinitionError("intensity_levels must be a whole number from 2 to 65536 (or null)")
        if options.common_spacing_mm is not None and not options.common_spacing_mm > 0:
            raise StudyDefinitionError("common_spacing_mm must be positive")
        if not options.localisation_tolerance_mm > 0:
            raise StudyDefinitionError("localisation_tolerance_mm must be positive")


def _from_dict(data: dict, base_dir: Path) -> StudyDefinition:
    if not isinstance(data, dict):
        raise StudyDefinitionError("a study definition is a mapping with name, questions and cases")
    try:
        questions = [Question(**q) for q in data.get("questions") or []]
        cases = [CaseSpec(**{**c, "id": str(c["id"])}) for c in data.get("cases") or []]
        options = StudyOptions(**(data.get("options") or {}))
        definition = StudyDefinition(
            name=str(data.get("name", "")),
            seed=int(data.get("seed", 0)),
            questions=questions,
            cases=cases,
            options=options,
            base_dir=str(base_dir),
        )
    except (TypeError, KeyError, ValueError) as error:
        raise StudyDefinitionError(f"malformed study definition: {error}") from None
    for case in definition.cases:
        case.mrmc_case = case.mrmc_case or case.id
    return definition


def load_definition(path: str | Path) -> StudyDefinition:
    """Read a YAML or JSON study definition (YAML loaded safely: no code, no tags)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise StudyDefinitionError(f"cannot read {path}: {error.strerror}") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as error:
        raise StudyDefinitionError(f"{path.name} is not valid {path.suffix[1:].upper()}: {error}") from None
    definition = _from_dict(data, path.parent.resolve())
    definition.validate()
    return definition


def save_definition(definition: StudyDefinition, path: str | Path) -> Path:
    path = Path(path)
    data = definition.to_dict()
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    else:
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def default_questions() -> list[Question]:
    return [
        Question("call", "real_synthetic", scale="1-5"),
        Question("quality", "likert"),
        Question("comment", "free_text", required=False),
    ]


def _image_files(folder: Path) -> list[Path]:
    """The cases of a folder: image files, and sub-folders (each one DICOM series)."""
    return sorted(
        p
        for p in folder.iterdir()
        if (p.is_file() and str(p).lower().endswith(IMAGE_SUFFIXES))
        or (p.is_dir() and not p.name.startswith("."))
    )


def definition_from_folders(
    real_dir: str | Path,
    synthetic_dir: str | Path,
    name: str,
    seed: int,
    practice_per_class: int = 0,
    base_dir: str | Path | None = None,
) -> StudyDefinition:
    """A visual-Turing-test definition from a folder of real and a folder of synthetic images
    (image files, or one sub-folder per DICOM series).

    The first ``practice_per_class`` files of each folder become practice cases; intensities are
    normalised (``intensity_normalisation: percentile``)."""
    cases = []
    for truth, folder in (("real", Path(real_dir)), ("synthetic", Path(synthetic_dir))):
        if not folder.is_dir():
            raise StudyDefinitionError(f"not a folder: {folder}")
        files = _image_files(folder)
        if not files:
            raise StudyDefinitionError(f"no image files in {folder}")
        for index, path in enumerate(files):
            case_id = f"{truth}-{index + 1:03d}"
            cases.append(
                CaseSpec(
                    case_id,
                    str(path.resolve()),
                    truth,
                    mrmc_case=case_id,
                    practice=index < practice_per_class,
                )
            )
    definition = StudyDefinition(
        name=name,
        seed=seed,
        questions=default_questions(),
        cases=cases,
        # Acquired and generated images differ in range, data type and quantisation: folders
        # mode blinds intensities by default (the audit of `study create` shows what is left).
        options=StudyOptions(intensity_normalisation="percentile"),
        base_dir=str(Path(base_dir or ".").resolve()),
    )
    definition.validate()
    return definition
