"""The JSON entry of a metric computed by a network whose weights the user supplies (LPIPS, FID):
the value or, when it is absent, why; the weights file and its SHA-256; and the warning that the
figure is not validated for medical images (the networks learned from natural photographs)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

NOT_VALIDATED = "not validated for medical images"
NOT_FINITE = "the network gave NaN or infinite values on these images: check the weights file"


@dataclass(frozen=True)
class LearnedMetricEntry:
    value: float | None
    reason: str | None  # why value is null
    weights_file: str | None
    weights_sha256: str | None
    validated_for_medical_images: bool = False
    warning: str = NOT_VALIDATED
    definition: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def without_weights(option: str, definition: str) -> LearnedMetricEntry:
    return LearnedMetricEntry(
        value=None,
        reason=f"no weights file given ({option} PATH): SynthView never downloads network weights",
        weights_file=None,
        weights_sha256=None,
        definition=definition,
    )
