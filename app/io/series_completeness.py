"""Is a series complete? Warnings for the files a folder scan did not find.

Slice positions show a missing slice in the middle of a stack (``dicom_scan`` reports it);
they cannot show slices missing at either end, as a killed or interrupted copy leaves them.
Two more signs are checked here:

* gaps in InstanceNumber, taken in steps of the series' usual increment (so interleaved
  echoes or phases, split into parts numbered 1, 3, 5 ..., are not gaps);
* a series SynthView wrote records its slice count in every instance (ImagesInAcquisition,
  ``app.io.dicom_export``); fewer instances found than recorded means files are missing.
  Other manufacturers' ImagesInAcquisition counts an acquisition, which may span series, so
  it is only read for SynthView's own series.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

SYNTHVIEW_MANUFACTURER = "SynthView"


def completeness_warnings(
    instance_numbers: Sequence[int | None],
    recorded_counts: Sequence[int | None],
    manufacturer: str,
    missing_positions_reported: bool = False,
) -> list[str]:
    """Warnings about missing instances of one single-frame series part (one entry per file)."""
    warnings = []
    found = len(instance_numbers)
    recorded = {count for count in recorded_counts if count}
    if manufacturer.strip() == SYNTHVIEW_MANUFACTURER and len(recorded) == 1:
        (expected,) = recorded
        if found < expected:
            warnings.append(
                f"incomplete series: {found} of the {expected} slices written"
                f" ({expected - found} files missing)"
            )
            return warnings
    if missing_positions_reported:
        return warnings  # the position gaps already say it
    missing, first, last = _instance_number_gaps(instance_numbers)
    if missing:
        warnings.append(
            f"{missing} instance number(s) missing between {first} and {last}: the series may be incomplete"
        )
    return warnings


def _instance_number_gaps(numbers: Sequence[int | None]) -> tuple[int, int, int]:
    """(missing count, first, last) of the instance numbers, in steps of the usual increment."""
    known = sorted({n for n in numbers if n is not None})
    if len(known) < 3 or len(known) != len(numbers):
        return 0, 0, 0  # too few, or some unnumbered/duplicated: nothing to conclude
    steps = [b - a for a, b in zip(known, known[1:], strict=False)]
    step = Counter(steps).most_common(1)[0][0]
    if step <= 0:
        return 0, 0, 0
    missing = sum(gap // step - 1 for gap in steps if gap % step == 0 and gap > step)
    return missing, known[0], known[-1]
