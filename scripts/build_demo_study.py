"""Build the demo study (MNI152 T1 template as a DICOM MR series) into resources/demo/generated/.

Idempotent: returns at once when a complete build of the current version is already there.
``--force`` rebuilds; ``--output DIR`` writes elsewhere. The work is done by
``app.io.demo_study`` so the application and the tests share it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.io.demo_study import DEMO_SERIES_DIR, build_demo_study, demo_study_is_built  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEMO_SERIES_DIR, help="series folder to write")
    parser.add_argument("--force", action="store_true", help="rebuild even when already built")
    parser.add_argument("--quiet", action="store_true", help="print nothing when already built")
    args = parser.parse_args(argv)
    if demo_study_is_built(args.output) and not args.force:
        if not args.quiet:
            print(f"demo study already built: {args.output}")
        return 0
    started = time.perf_counter()
    build_demo_study(args.output)
    print(f"[demo] built {args.output} in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
