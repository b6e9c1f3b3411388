"""Plugin manifest: read ``plugin.yaml`` (or ``plugin.toml``), validate it, give typed fields.

The schema lives beside this module (``manifest_schema.json``) and is never fetched. YAML is
read with ``yaml.safe_load``: a manifest is data and cannot execute anything. Every mistake is
reported at once, one line each, with the field's dotted path.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import jsonschema
import yaml

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
    raw: dict = field(default_factory=dict, repr=False)

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


def read_manifest_data(manifest_file: Path) -> dict:
    """Parse YAML or TOML as plain data, with a clear message on a syntax error."""
    try:
        text = manifest_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ManifestError(f"{manifest_file}: cannot read manifest: {error}") from error
    try:
        if manifest_file.suffix == ".toml":
            data = tomllib.loads(text)
        else:
            data = yaml.safe_load(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as error:
        raise ManifestError(
            f"{manifest_file}: not valid {manifest_file.suffix[1:].upper()}: {error}"
        ) from error
    if not isinstance(data, dict):
        raise ManifestError(f"{manifest_file}: a manifest is a mapping of fields, got {type(data).__name__}")
    return data


def schema_problems(data: dict) -> list[str]:
    """One readable line per schema violation, sorted by field path."""
    validator = jsonschema.Draft202012Validator(manifest_schema())
    problems: list[str] = []
    for error in validator.iter_errors(data):
        problems.extend(_explain(error))
    return sorted(set(problems))


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
}


def _message(error: jsonschema.ValidationError) -> str:
    if error.validator == "enum":
        return f"{error.instance!r} is not one of {', '.join(map(str, error.validator_value))}"
    if error.validator == "additionalProperties":
        return error.message.replace("Additional properties are not allowed", "unknown field(s)")
    if error.validator == "pattern" and isinstance(error.instance, str) and len(error.validator_value) > 40:
        return f"{error.instance!r} has the wrong form"
    if error.validator == "pattern" and error.validator_value == "^[0-9a-fA-F]{64}$":
        return f"{error.instance!r} is not a SHA-256 (64 hexadecimal digits)"
    return error.message


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
    return problems


def _weights_ref(folder: Path, data: dict, where: str) -> tuple[WeightsRef, list[str]]:
    path = Path(data["file"])
    path = path if path.is_absolute() else folder / path
    problems = [] if path.is_file() else [f"{where}.file: {path} does not exist"]
    return WeightsRef(path.resolve() if path.exists() else path, data["sha256"].lower()), problems


def _architecture(data: dict) -> ArchitectureSpec:
    return ArchitectureSpec(
        type=data["type"],
        input_nc=int(data.get("input_nc", 1)),
        output_nc=int(data.get("output_nc", 1)),
        ngf=int(data.get("ngf", 64)),
        norm=data.get("norm", "instance"),
        use_dropout=bool(data.get("use_dropout", False)),
    )


def manifest_from_data(data: dict, manifest_path: Path) -> PluginManifest:
    """Validate parsed manifest data; raise ManifestError listing every problem."""
    problems = schema_problems(data)
    if not problems:
        problems = _semantic_problems(data)
    folder = manifest_path.parent
    if not problems:
        weights, missing = _weights_ref(folder, data["weights"], "weights")
        problems += missing
        reverse_weights = None
        if "reverse" in data:
            reverse_weights, missing = _weights_ref(folder, data["reverse"]["weights"], "reverse.weights")
            problems += missing
    if problems:
        listing = "\n".join(f"  - {p}" for p in problems)
        raise ManifestError(f"{manifest_path}: {len(problems)} problem(s) in the plugin manifest:\n{listing}")

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
        raw=data,
    )


def load_manifest(path: str | Path) -> PluginManifest:
    """Read and validate the manifest in a plugin folder (or the manifest file itself)."""
    manifest_file = find_manifest_file(path)
    return manifest_from_data(read_manifest_data(manifest_file), manifest_file)
