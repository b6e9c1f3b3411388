"""The analysis as strict JSON: a figure that is not a finite number is written as null, and the
reason is listed in ``null_values`` (``NaN`` and ``Infinity`` are not JSON; many readers refuse
them or take them as strings)."""

from __future__ import annotations

import json
import math

# Why a figure is undefined, by the name of its field (the last key of its path).
_REASONS = {
    "estimate": "no readings of this kind (total 0)",
    "ci_low": "no readings of this kind (total 0)",
    "ci_high": "no readings of this kind (total 0)",
    "binomial_p_value": "no readings of this kind (total 0)",
    "ddf": "infinite: no treatment-by-reader variance (the chi-square limit of the F test)",
    "df": "infinite: no reader variance of the AUCs (the normal limit)",
    "kappa": "undefined: every reader gave the same call",
}
_DEFAULT_REASON = "undefined for these data (not a finite number)"


def _clean(value: object, path: str, nulls: list[dict]) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        field = path.rsplit(".", 1)[-1]
        nulls.append({"field": path, "value": str(value), "reason": _REASONS.get(field, _DEFAULT_REASON)})
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v, f"{path}.{k}" if path else str(k), nulls) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v, f"{path}[{i}]", nulls) for i, v in enumerate(value)]
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        return _clean(value.item(), path, nulls)
    return value


def finite_json(result: dict) -> dict:
    """A copy of ``result`` with every non-finite number replaced by null, and ``null_values``
    (field path, value, reason) added when there were any."""
    nulls: list[dict] = []
    cleaned = _clean(result, "", nulls)
    if nulls:
        cleaned["null_values"] = nulls
    return cleaned


def dumps(result: dict) -> str:
    return json.dumps(finite_json(result), indent=2, allow_nan=False)
