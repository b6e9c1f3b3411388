"""Plugin manifest: read ``plugin.yaml`` (or ``plugin.toml``), validate it, give typed fields.

The schema lives beside this module (``manifest_schema.json``) and is never fetched. YAML is
read with ``yaml.safe_load``: a manifest is data and cannot execute anything. Every mistake is
reported at once, one line each, with the field's dotted path.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import jsonschema
import yaml

from app.core.label_map import DEFAULT_COLOURS, LabelCode, LabelEntry
from app.plugins.errors import ManifestError

MANIFEST_NAMES = ("plugin.yaml", "plugin.yml", "plugin.toml")
SCHEMA_PATH = Path(__file__).with_name("manifest_schema.json")
BUILTIN_ARCHITECTURES = ("resnet_9blocks", "resnet_6blocks", "unet_128", "unet_256")

# Side lengths a built-in generator needs: two stride-2 convolutions (ResNet), or one
# halving per U-Net level down to a 1x1 bottleneck.
_SIZE_MULTIPLE = {"resnet_9blocks": 4, "resnet_6blocks": 4, "unet_128": 128, "unet_256": 256}


@dataclass(frozen=True)
class ArchitectureSpec:
    type: str
    input_nc: int = 1
    output_nc: int = 1
    ngf: int = 64
    norm: str = "instance"
    use_dropout: bool = False

    @property
    def is_builtin(self) -> bool:
        return self.type in BUILTIN_ARCHITECTURES

    def describe(self) -> str:
        if not self.is_builtin:
            return self.type
        dropout = ", dropout" if self.use_dropout else ""
        return (
            f"{self.type} (input_nc {self.input_nc}, output_nc {self.output_nc}, ngf {self.ngf},"
            f" {self.norm} norm{dropout})"
        )


@dataclass(frozen=True)
class WeightsRef:
    path: Path
    sha256: str
    folder: Path | None = None  # the plugin folder the file must stay inside (checked again on load)


# A generator of these tasks changes the kind of image (modality or contrast) it is given.
KIND_CHANGING_TASKS = ("cross-modality", "cross-contrast")


@dataclass(frozen=True)
class PluginManifest:
    """A validated manifest; paths are absolute, resolved against the manifest's folder."""

    manifest_path: Path
    name: str
    version: str
    task: str
    input_modality: str
    input_modalities: tuple[str, ...]
    input_contrast: str
    output_modality: str
    output_contrast: str
    output_units: str
    dimensionality: str
    plane: str | None
    context_slices: int
    normalization: dict
    spacing_mm: tuple[float, ...] | None
    patch_size: tuple[int, ...] | None
    patch_overlap: float
    size_multiple: int
    architecture: ArchitectureSpec
    weights: WeightsRef
    reverse_architecture: ArchitectureSpec | None
    reverse_weights: WeightsRef | None
    model_card: dict
    training_domain: dict
    description: str = ""
    labels: tuple[LabelEntry, ...] = ()  # segmentation: the label table
    raw: dict = field(default_factory=dict, repr=False)

    @property
    def keeps_image_kind(self) -> bool:
        """Its output is an image of its input's kind (a denoiser, a super-resolution plugin), so
        input and output can be compared voxel by voxel or as image sets: not a kind-changing
        task, not a label map or a generation, and no declared modality or contrast change."""
        if self.task in (*KIND_CHANGING_TASKS, "segmentation", "generation"):
            return False
        inputs = {m.upper() for m in self.input_modalities}
        output = self.output_modality.upper()
        if inputs and output and output not in inputs:
            return False
        return not (self.input_contrast and self.output_contrast and self.input_contrast != self.output_contrast)

    @property
    def is_segmentation(self) -> bool:
        """Makes a label map (integer labels), not an image."""
        return self.task == "segmentation"

    def label_channels_problem(self, channels: int) -> str | None:
        """Why a segmentation network returning ``channels`` channels does not fit the label table,
        or None: it returns one channel per label value (argmax) or the labels in one channel. A
        mismatch would leave labels that can never come out (reported as absent, Dice n/a) or
        channels with no name."""
        top = max(entry.value for entry in self.labels)
        if channels == 1 or channels == top + 1:
            return None
        return (
            f"the network returns {channels} channels but the label table runs 0-{top}: a segmentation"
            f" network returns one channel per label value ({top + 1}), or the labels in one channel"
        )

    @property
    def folder(self) -> Path:
        return self.manifest_path.parent

    @property
    def input_channels(self) -> int:
        """Image channels taken from the volume: one slice, or a slice and its neighbours (2.5D)."""
        return self.context_slices if self.dimensionality == "2.5D" else 1

    @property
    def network_input_channels(self) -> int:
        """Channels the network takes: a 2D / 3D generator trained on RGB images (input_nc 3, the
        pix2pix/CycleGAN default) gets the one grey image repeated in each, as those codes read a
        grey PNG."""
        if self.dimensionality == "2.5D":
            return self.context_slices
        return max(1, self.architecture.input_nc)

    def accepts_modality(self, modality: str) -> bool:
        return modality.upper() in {m.upper() for m in self.input_modalities}

    def declared_training_domain(self) -> dict:
        """What the generator was trained on, for the out-of-distribution check (plain dict)."""
        domain = dict(self.training_domain)
        domain.setdefault("modalities", list(self.input_modalities))
        if self.input_contrast:
            domain.setdefault("contrasts", [self.input_contrast])
        # spacing_mm is not added: it is in the plugin's image frame, and the runtime resamples
        # the image axes to it (app.plugins.training_grid); training_domain bounds still apply.
        if self.task == "super-resolution" and self.spacing_mm:
            domain.setdefault("super_resolution_target_mm", float(max(self.spacing_mm)))
        return domain

    def model_card_text(self) -> str:
        """The model card as plain text (for the panel and ``plugins list``)."""
        card = self.model_card
        lines = [
            f"{self.name} {self.version} — {self.task}",
            f"Input: {'/'.join(self.input_modalities) or '-'} {self.input_contrast}".rstrip(),
            f"Output: {self.output_modality} {self.output_contrast}".rstrip(),
            f"Works in: {self.dimensionality}" + (f" {self.plane}" if self.plane else ""),
            f"Architecture: {self.architecture.describe()}",
            f"Training data: {card.get('training_data', '')}",
            f"Paired: {'yes' if card.get('paired') else 'no'}",
            f"Intended use: {card.get('intended_use', '')}",
            f"Known limits: {card.get('known_limits', '')}",
        ]
        for key in ("authors", "license"):
            if card.get(key):
                lines.append(f"{key.capitalize()}: {card[key]}")
        if card.get("metrics"):
            metrics = ", ".join(f"{k} {v}" for k, v in card["metrics"].items())
            lines.append(f"Metrics: {metrics}")
        if self.labels:
            lines.append("Labels: " + ", ".join(f"{e.value} {e.name}" for e in self.labels))
        return "\n".join(lines)


@cache
def manifest_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def find_manifest_file(path: str | Path) -> Path:
    """The manifest file at ``path`` (a file) or inside it (a folder)."""
    path = Path(path)
    if path.is_file():
        return path
    if path.is_dir():
        for name in MANIFEST_NAMES:
            if (path / name).is_file():
                return path / name
        raise ManifestError(f"{path}: no plugin manifest found (expected one of {', '.join(MANIFEST_NAMES)})")
    raise ManifestError(f"{path}: no such plugin folder or manifest file")


MAX_MANIFEST_BYTES = 1 << 20  # a manifest is a page of fields; real ones are a few KB
MAX_MANIFEST_DEPTH = 16  # the schema's deepest field is 4 levels down (normalization.input.low)
MAX_MANIFEST_VALUES = 100_000  # after YAML aliases are expanded; real manifests have about 100


def read_manifest_data(manifest_file: Path) -> dict:
    """Parse YAML or TOML as plain data; every refusal is one line naming the file (and line).

    Size, nesting and the number of values YAML aliases expand to are bounded before anything
    is built: a "billion laughs" manifest (aliases of aliases) would otherwise take gigabytes.
    """
    text = _manifest_text(manifest_file)
    if manifest_file.suffix == ".toml":
        data = _parse_toml(manifest_file, text)
    else:
        data = _parse_yaml(manifest_file, text)
    if not isinstance(data, dict):
        raise ManifestError(f"{manifest_file}: a manifest is a mapping of fields, got {type(data).__name__}")
    if _depth(data) > MAX_MANIFEST_DEPTH:
        raise ManifestError(
            f"{manifest_file}: fields nested more than {MAX_MANIFEST_DEPTH} levels deep: a manifest has"
            " at most a few levels (see app/plugins/manifest_schema.json)"
        )
    return data


def _manifest_text(manifest_file: Path) -> str:
    try:
        with open(manifest_file, "rb") as stream:
            raw = stream.read(MAX_MANIFEST_BYTES + 1)
    except OSError as error:
        raise ManifestError(f"{manifest_file}: cannot read manifest: {error.strerror or error}") from error
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ManifestError(
            f"{manifest_file}: larger than {MAX_MANIFEST_BYTES // (1 << 20)} MiB, not a manifest: keep"
            " data (weights, tables) in separate files"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ManifestError(
            f"{manifest_file}: not UTF-8 text (byte {error.start}): save the manifest as UTF-8"
        ) from error


def _yaml_loader():
    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: fast


def _parse_yaml(manifest_file: Path, text: str):
    """Scan the events first (nesting depth, and the size aliases expand to) and only then build
    the data: a "billion laughs" manifest (aliases of aliases) is refused in milliseconds."""
    try:
        depth, expanded = 0, 0
        open_collections: list[tuple[str | None, int]] = []  # (anchor, expanded count at start)
        anchored_sizes: dict[str, int] = {}
        for event in yaml.parse(text, Loader=_yaml_loader()):
            if isinstance(event, yaml.AliasEvent):
                expanded += anchored_sizes.get(event.anchor, 1)
            elif isinstance(event, yaml.ScalarEvent):
                expanded += 1
                if event.anchor:
                    anchored_sizes[event.anchor] = 1
            elif isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_MANIFEST_DEPTH:
                    raise ManifestError(
                        f"{manifest_file}:{_line(event)}: nested more than {MAX_MANIFEST_DEPTH} levels"
                        " deep: a manifest has at most a few levels (see app/plugins/manifest_schema.json)"
                    )
                open_collections.append((event.anchor, expanded))
                expanded += 1
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
                anchor, start = open_collections.pop()
                if anchor:
                    anchored_sizes[anchor] = expanded - start
            if expanded > MAX_MANIFEST_VALUES:
                raise ManifestError(_too_many_values(manifest_file, event, bool(anchored_sizes)))
        return yaml.load(text, Loader=_yaml_loader())  # noqa: S506 (a safe loader)
    except yaml.MarkedYAMLError as error:
        raise ManifestError(_yaml_error_line(manifest_file, error)) from None
    except yaml.YAMLError as error:
        raise ManifestError(f"{manifest_file}: not valid YAML: {_one_line(str(error))}") from None


def _too_many_values(manifest_file: Path, event, uses_aliases: bool) -> str:
    where = f"{manifest_file}:{_line(event)}"
    if uses_aliases:
        return (
            f"{where}: expands to more than {MAX_MANIFEST_VALUES} values (YAML aliases of aliases, a"
            ' "billion laughs"): write the values out without * aliases'
        )
    return (
        f"{where}: holds more than {MAX_MANIFEST_VALUES} values, not a manifest (real ones hold about"
        " a hundred): keep data in separate files"
    )


def _line(event) -> int:
    return event.start_mark.line + 1 if event.start_mark else 0


def _yaml_error_line(manifest_file: Path, error: yaml.MarkedYAMLError) -> str:
    """``file:line: problem: what to change``, without PyYAML's caret excerpt."""
    mark = error.problem_mark or error.context_mark
    where = f"{manifest_file}:{mark.line + 1}" if mark else str(manifest_file)
    problem = _one_line(error.problem or error.context or "not valid YAML")
    if isinstance(error, yaml.constructor.ConstructorError) and "tag" in problem:
        return f"{where}: YAML tags (!!python/..., !name) are not allowed in a manifest: remove the tag ({problem})"
    return f"{where}: not valid YAML: {problem}: fix the syntax on that line"


def _parse_toml(manifest_file: Path, text: str):
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = _one_line(str(error))
        found = re.search(r"\s*\(at line (\d+), column \d+\)", message)
        where = f"{manifest_file}:{found.group(1)}" if found else str(manifest_file)
        problem = message[: found.start()] if found else message
        raise ManifestError(f"{where}: not valid TOML: {problem}: fix the syntax on that line") from None
    except RecursionError:
        raise ManifestError(
            f"{manifest_file}: nested too deeply: a manifest has at most a few levels"
            " (see app/plugins/manifest_schema.json)"
        ) from None


def _one_line(text: str) -> str:
    return " ".join(text.split())[:200]


def _depth(data) -> int:
    """Nesting depth of parsed data, without recursion."""
    deepest, pending = 0, [(data, 0)]
    while pending:
        value, level = pending.pop()
        if isinstance(value, dict | list):
            deepest = max(deepest, level + 1)
            if deepest > MAX_MANIFEST_DEPTH:
                return deepest
            children = value.values() if isinstance(value, dict) else value
            pending.extend((child, level + 1) for child in children)
    return deepest


def _non_finite_numbers(data, path: str = "") -> list[str]:
    """Fields holding NaN or infinity (JSON-schema bounds let NaN through)."""
    problems, pending = [], [(data, path)]
    while pending:
        value, where = pending.pop()
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(f"{where or 'manifest'}: must be a finite number, got {value}")
        elif isinstance(value, dict):
            pending.extend((v, f"{where}.{k}" if where else str(k)) for k, v in value.items())
        elif isinstance(value, list):
            pending.extend((v, f"{where}.{n}") for n, v in enumerate(value))
    return sorted(problems)


def _strict_integer(checker, instance) -> bool:
    """An integer field takes whole numbers written as such (1e30 is a float, not a size)."""
    return isinstance(instance, int) and not isinstance(instance, bool)


_Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _strict_integer),
)


def schema_problems(data: dict) -> list[str]:
    """One readable line per field in violation (the first problem of each), sorted by field."""
    non_finite = _non_finite_numbers(data)
    if non_finite:
        return non_finite
    by_field: dict[str, str] = {}
    for error in _Validator(manifest_schema()).iter_errors(data):
        for line in _explain(error):
            by_field.setdefault(line.split(": ", 1)[0], line)
    return sorted(set(by_field.values()))


def _where(error: jsonschema.ValidationError) -> str:
    path = ".".join(str(part) for part in error.absolute_path)
    return path or "manifest"


def _explain(error: jsonschema.ValidationError) -> list[str]:
    where = _where(error)
    if error.validator == "oneOf" and isinstance(error.instance, dict):
        # Report against the branch the author meant (chosen by ``method``), not all branches.
        method = error.instance.get("method")
        branches = error.validator_value
        methods = [b.get("properties", {}).get("method", {}).get("const") for b in branches]
        if method not in methods:
            return [f"{where}.method: unknown method {method!r}; choose one of {', '.join(methods)}"]
        branch = branches[methods.index(method)]
        sub = jsonschema.Draft202012Validator(branch)
        lines = []
        for sub_error in sub.iter_errors(error.instance):
            sub_where = ".".join([where, *map(str, sub_error.absolute_path)])
            lines.append(f"{sub_where}: {_message(sub_error)}")
        return lines or [f"{where}: {error.message}"]
    if error.validator == "required" and where == "manifest":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        hint = _REQUIRED_HINTS.get(missing, "")
        return [f"missing required field '{missing}'{hint}"]
    return [f"{where}: {_message(error)}"]


_REQUIRED_HINTS = {
    "plane": " (2D and 2.5D plugins must say which plane they work in: axial, coronal or sagittal)",
    "context_slices": " (2.5D plugins must say how many adjacent slices they take, e.g. 3)",
    "input": " (every task except generation takes an input image)",
    "labels": " (a segmentation plugin lists its labels: value, name, optional color and code)",
}


def _message(error: jsonschema.ValidationError) -> str:
    if error.validator == "type" and error.validator_value == "integer" and isinstance(error.instance, float):
        return f"{error.instance!r} is not a whole number: write an integer"
    if error.validator in ("maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum"):
        return _bound_message(error)
    if error.validator == "enum":
        return f"{error.instance!r} is not one of {', '.join(map(str, error.validator_value))}"
    if error.validator == "additionalProperties":
        return error.message.replace("Additional properties are not allowed", "unknown field(s)")
    if error.validator == "pattern" and isinstance(error.instance, str) and len(error.validator_value) > 40:
        return f"{error.instance!r} has the wrong form"
    if error.validator == "pattern" and error.validator_value == "^[0-9a-fA-F]{64}$":
        return f"{error.instance!r} is not a SHA-256 (64 hexadecimal digits)"
    return error.message


def _bound_message(error: jsonschema.ValidationError) -> str:
    schema = error.schema
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    low_text = "" if low is None else f"{'above' if 'exclusiveMinimum' in schema else 'at least'} {low:g}"
    high_text = "" if high is None else f"{'below' if 'exclusiveMaximum' in schema else 'at most'} {high:g}"
    wanted = " and ".join(text for text in (low_text, high_text) if text)
    return f"{error.instance:g} is out of range: must be {wanted}"


def _semantic_problems(data: dict) -> list[str]:
    """Rules the schema cannot say: ordering of bounds, odd slice counts, channel counts."""
    problems = []
    norm = data.get("normalization", {})
    for side in ("input", "output"):
        scaling = norm.get(side, {})
        if scaling.get("method") == "window" and not scaling["low"] < scaling["high"]:
            problems.append(f"normalization.{side}: low must be below high")
        if (
            scaling.get("method") == "percentile"
            and not scaling["low_percentile"] < scaling["high_percentile"]
        ):
            problems.append(f"normalization.{side}: low_percentile must be below high_percentile")
    network_range = norm.get("network_range")
    if network_range and not network_range[0] < network_range[1]:
        problems.append("normalization.network_range: first value must be below the second")
    if data.get("dimensionality") == "2.5D":
        count = data.get("context_slices", 3)
        if count % 2 == 0:
            problems.append(f"context_slices: must be odd (a centre slice plus neighbours), got {count}")
        arch = data.get("architecture", {})
        if arch.get("type") in BUILTIN_ARCHITECTURES and arch.get("input_nc", 1) != count:
            problems.append(
                f"architecture.input_nc: a 2.5D plugin takes {count} channels, got {arch.get('input_nc', 1)}"
            )
    if (
        data.get("dimensionality") == "3D"
        and data.get("architecture", {}).get("type") in BUILTIN_ARCHITECTURES
    ):
        problems.append(
            "architecture.type: the built-in generators are 2D; a 3D plugin needs torchscript or onnx"
        )
    patch = data.get("patch_size")
    dims = {"2D": 2, "2.5D": 2, "3D": 3}.get(data.get("dimensionality"))
    if patch and dims and len(patch) != dims:
        problems.append(
            f"patch_size: a {data['dimensionality']} plugin needs {dims} values, got {len(patch)}"
        )
    spacing = data.get("spacing_mm")
    if spacing and dims == 3 and len(spacing) != 3:  # the runtime would ignore it
        problems.append(f"spacing_mm: a 3D plugin needs 3 values [i, j, k], got {len(spacing)}")
    return problems + _label_problems(data)


def _label_problems(data: dict) -> list[str]:
    labels = data.get("labels")
    if labels is None:
        return []
    if data.get("task") != "segmentation":
        return ["labels: only a segmentation plugin has a label table: remove it or set task: segmentation"]
    values = [entry["value"] for entry in labels]
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        return [f"labels: value {repeated[0]} is listed more than once: each label needs its own value"]
    return []


def _label_table(data: list[dict]) -> tuple[LabelEntry, ...]:
    entries = []
    for entry in sorted(data, key=lambda e: e["value"]):
        value = int(entry["value"])
        colour = entry.get("color") or DEFAULT_COLOURS[value % len(DEFAULT_COLOURS)]
        code = entry.get("code")
        entries.append(
            LabelEntry(
                value=value,
                name=entry["name"],
                colour_rgb=tuple(int(c) for c in colour),
                code=LabelCode(str(code["scheme"]), str(code["value"]), str(code["meaning"])) if code else None,
            )
        )
    return tuple(entries)


def confined_file(folder: Path, name: str, where: str) -> tuple[Path, list[str]]:
    """The file ``name`` inside the plugin folder, or a refusal: an absolute path, ``..`` or a
    symbolic link leading out of the folder would let a manifest read (and hash) any file."""
    given = Path(name)
    root = folder.resolve()
    if given.is_absolute() or given.drive:
        return given, [
            f"{where}: {name} is an absolute path: copy the file into the plugin folder ({root}) and"
            " give its name relative to it"
        ]
    try:
        resolved = (folder / given).resolve()
    except (OSError, RuntimeError) as error:  # a symbolic-link loop
        return folder / given, [f"{where}: {name} cannot be resolved ({error}): point it at a real file"]
    if not resolved.is_relative_to(root):
        return folder / given, [
            f"{where}: {name} resolves outside the plugin folder (to {resolved}): copy the file into"
            f" {root} and give its name relative to it"
        ]
    if not resolved.is_file():
        return resolved, [f"{where}: {folder / given} does not exist: put the file there or fix the name"]
    return resolved, []


def _weights_ref(folder: Path, data: dict, where: str) -> tuple[WeightsRef, list[str]]:
    path, problems = confined_file(folder, data["file"], f"{where}.file")
    return WeightsRef(path, data["sha256"].lower(), folder.resolve()), problems


def _architecture(data: dict) -> ArchitectureSpec:
    return ArchitectureSpec(
        type=data["type"],
        input_nc=int(data.get("input_nc", 1)),
        output_nc=int(data.get("output_nc", 1)),
        ngf=int(data.get("ngf", 64)),
        norm=data.get("norm", "instance"),
        use_dropout=bool(data.get("use_dropout", False)),
    )


def manifest_problems_message(manifest_path: Path, problems: list[str]) -> str:
    """The first problem on the first line (with what to change), any others listed below it."""
    first = f"{manifest_path}: {problems[0]}"
    if len(problems) == 1:
        return first
    listing = "\n".join(f"  - {p}" for p in problems[1:])
    more = len(problems) - 1
    return f"{first} ({more} more problem{'s' if more > 1 else ''} below)\n{listing}"


def manifest_from_data(data: dict, manifest_path: Path) -> PluginManifest:
    """Validate parsed manifest data; raise ManifestError listing every problem."""
    problems = schema_problems(data)
    if not problems:
        problems = _semantic_problems(data)
    folder = manifest_path.resolve().parent  # a linked manifest: its weights lie beside the real file
    if not problems:
        weights, missing = _weights_ref(folder, data["weights"], "weights")
        problems += missing
        reverse_weights = None
        if "reverse" in data:
            reverse_weights, missing = _weights_ref(folder, data["reverse"]["weights"], "reverse.weights")
            problems += missing
        card_file = data["model_card"].get("file")
        if card_file:
            problems += confined_file(folder, card_file, "model_card.file")[1]
    if problems:
        raise ManifestError(manifest_problems_message(manifest_path, problems))

    inputs = data.get("input", {})
    outputs = data["output"]
    modalities = tuple(
        dict.fromkeys([m for m in [inputs.get("modality"), *inputs.get("modalities", [])] if m])
    )
    architecture = _architecture(data["architecture"])
    multiple = data.get("size_multiple", _SIZE_MULTIPLE.get(architecture.type, 1))
    patch = data.get("patch_size")
    if patch is None and architecture.type.startswith("unet_"):
        patch = [multiple, multiple]
    return PluginManifest(
        manifest_path=manifest_path.resolve(),
        name=data["name"],
        version=str(data["version"]),
        task=data["task"],
        input_modality=inputs.get("modality", ""),
        input_modalities=modalities,
        input_contrast=inputs.get("contrast", ""),
        output_modality=outputs["modality"],
        output_contrast=outputs.get("contrast", ""),
        output_units=outputs.get("units", ""),
        dimensionality=data["dimensionality"],
        plane=data.get("plane"),
        context_slices=int(data.get("context_slices", 1)),
        normalization=data["normalization"],
        spacing_mm=tuple(data["spacing_mm"]) if "spacing_mm" in data else None,
        patch_size=tuple(patch) if patch else None,
        patch_overlap=float(data.get("patch_overlap", 0.25)),
        size_multiple=int(multiple),
        architecture=architecture,
        weights=weights,
        reverse_architecture=_architecture(data["reverse"]["architecture"]) if "reverse" in data else None,
        reverse_weights=reverse_weights,
        model_card=data["model_card"],
        training_domain=data.get("training_domain", {}),
        description=data.get("description", ""),
        labels=_label_table(data.get("labels", [])),
        raw=data,
    )


def load_manifest(path: str | Path) -> PluginManifest:
    """Read and validate the manifest in a plugin folder (or the manifest file itself)."""
    manifest_file = find_manifest_file(path)
    return manifest_from_data(read_manifest_data(manifest_file), manifest_file)
