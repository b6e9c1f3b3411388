"""Values as JSON can hold them: NaN becomes null, infinities the strings "inf" / "-inf"
(``json.dumps`` would write NaN and Infinity, which are not JSON)."""

from __future__ import annotations

import math


def json_safe(value):
    """``value`` with every non-finite float replaced, through dicts, lists and tuples."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
