"""Installed (frozen) app vs running from source: start-up and a plugin run, as time ratios.

Needs a frozen build (``bash packaging/build.sh``). Each command runs ``--repeat`` times from
source (``.venv/bin/python main.py ...``) and from the bundle (``dist/synthview/synthview ...``)
in the same process; the median frozen/source ratio is printed (below 1: the bundle is faster).

* ``--version``: bare start-up (argument parsing only);
* ``plugins list``: start-up plus plugin discovery;
* ``synthesize`` (with ``--synthesize``): a shipped plugin over the demo study on the CPU,
  which includes importing torch.

    .venv/bin/python bench/bench_frozen_app.py [--repeat 3] [--synthesize]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
FROZEN_APP = REPO_ROOT / "dist" / "synthview" / "synthview"
DEMO_STUDY = REPO_ROOT / "resources" / "demo" / "generated" / "demo_mr_t1"
PLUGIN = REPO_ROOT / "plugins" / "mr_t1_denoise"


def time_command(command: list[str], repeat: int) -> float:
    """Median wall time in seconds of ``command`` (it must exit 0)."""
    environment = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    durations = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=environment, cwd=tempfile.gettempdir())
        durations.append(time.perf_counter() - started)
    return statistics.median(durations)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--synthesize", action="store_true", help="also time a plugin run (slow)")
    args = parser.parse_args(argv)
    if not FROZEN_APP.exists():
        print(f"no frozen app at {FROZEN_APP}: run bash packaging/build.sh first", file=sys.stderr)
        return 1
    source = [sys.executable, str(REPO_ROOT / "main.py")]
    frozen = [str(FROZEN_APP)]
    commands = {"--version": ["--version"], "plugins list": ["plugins", "list"]}
    repeats = {name: args.repeat for name in commands}
    with tempfile.TemporaryDirectory() as folder:
        if args.synthesize:
            output = str(Path(folder) / "out.nii.gz")
            commands["synthesize"] = ["synthesize", "--plugin", str(PLUGIN), str(DEMO_STUDY), output]
            commands["synthesize"] += ["--device", "cpu", "--quiet"]
            repeats["synthesize"] = 1
        return _report(commands, repeats, source, frozen)


def _report(commands, repeats, source, frozen) -> int:
    print(f"{'command':<14} {'source s':>9} {'frozen s':>9} {'frozen/source':>14}")
    for name, arguments in commands.items():
        source_s = time_command(source + arguments, repeats[name])
        frozen_s = time_command(frozen + arguments, repeats[name])
        print(f"{name:<14} {source_s:9.2f} {frozen_s:9.2f} {frozen_s / source_s:14.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
