"""Start-up of bench_startup: process start to the main window with the demo on screen, against a
bare PySide6 window started the same way in the same run.

Each side runs in a fresh interpreter (what a user's double-click starts), launched in turn,
``--rounds`` times after one untimed start of each (bytecode compiled, files in the system's
cache, the study in SynthView's decoded-series cache); the figure is the median wall time from
launch to the end of the paint pass that first drew the demo study ("demo on screen": the first
image, ``app.ui.first_image``; the pass is over when a zero timer started at the end of the
image's paintEvent fires, as for the bare window's label), and its ratio to the bare window:
of the medians, start by start (each SynthView start against the bare start just before it:
the machine's load comes in bursts), and fastest against fastest. Two SynthView starts: reopening
the demo (its decoded-series cache holds it) and opening it for the first time (cache off). The
phases are printed from the child's own clock: imports, window, tools declared, shown, demo on
screen, "panels on screen" (the interactive pyqtgraph panels replaced the first image), "tools
built" (the docks' tools, built after the first image).

    .venv/bin/python bench/bench_startup.py [--rounds 3] [--demo PATH]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "resources" / "demo" / "generated" / "demo_mr_t1"

BARE = r"""
import time
from PySide6 import QtCore, QtWidgets
app = QtWidgets.QApplication([])


class Label(QtWidgets.QLabel):
    # On screen once the paint pass that drew the label is over: a zero timer started when the
    # label's paint ends fires then (as for SynthView's first image below).
    timed = False

    def paintEvent(self, event):
        super().paintEvent(event)
        if not self.timed:
            self.timed = True
            QtCore.QTimer.singleShot(0, lambda: (print("PAINTED", time.process_time(), flush=True), app.quit()))


window = QtWidgets.QMainWindow()
window.setCentralWidget(Label("bare"))
window.resize(1400, 850)
window.show()
app.exec()
"""

SYNTHVIEW = r"""
import sys, time
start = time.perf_counter()
HEAVY = ("pydicom", "nibabel", "scipy", "torch", "vtk", "vtkmodules", "skimage", "matplotlib")
phases = []
def mark(name):
    phases.append((name, time.perf_counter() - start))
sys.path.insert(0, sys.argv[2])
from app.cli.desktop_process import prepare_desktop_process
prepare_desktop_process()  # as main.py and 'view' do, before numpy's import
from PySide6 import QtCore, QtWidgets
mark("import PySide6")
from app.cli.file_services import file_services, import_readers_in_background
import_readers_in_background([sys.argv[1]])  # as main.py and 'view' do before importing app.ui
from app.ui.application import start_interactive_window
from app.ui.settings import ViewerSettings
mark("import app.ui")
settings = ViewerSettings(QtCore.QSettings(sys.argv[3], QtCore.QSettings.Format.IniFormat))
# What 'main.py view DEMO' runs (app.cli.view), with settings of its own. The first image's paint
# is over when a zero timer started at the end of its paintEvent fires (as for the bare label);
# no application-wide event filter until then (one costs a Python call per event of every object).
window = start_interactive_window([sys.argv[1]], file_services(), settings, (1400, 850), "mpr", mark)
app = QtWidgets.QApplication.instance()


class PanelsPaint(QtCore.QObject):
    # The interactive panels (SliceView, pyqtgraph) replace the first image: on screen once the
    # paint pass that drew them is over (the first event after a panel's Paint).
    painting = False

    def eventFilter(self, watched, event):
        if event.type() == QtCore.QEvent.Type.Paint:
            kind = type(watched).__name__, type(watched.parent()).__name__
            if "SliceView" in kind:
                self.painting = True
        elif self.painting:
            app.removeEventFilter(self)
            mark("panels on screen")
        return False


panels_paint = PanelsPaint()


def demo_on_screen():
    mark("demo on screen")
    print("PAINTED", time.process_time(), flush=True)
    app.installEventFilter(panels_paint)


# The paths open in start_interactive_window; the first paint comes in the event loop.
window.first_image_painted.connect(
    lambda: QtCore.QTimer.singleShot(0, demo_on_screen), QtCore.Qt.ConnectionType.SingleShotConnection
)


def poll():
    # The tools built at start (the docks in view) are built after the first image: report when.
    if any(name == "panels on screen" for name, _ in phases) and window._deferred_build is None:
        mark("tools built")
        heavy = [n for n in HEAVY if n in sys.modules]
        print("PHASES", ";".join(f"{n}={t:.3f}" for n, t in phases), "HEAVY", ",".join(heavy) or "-", flush=True)
        app.quit()
timer = QtCore.QTimer()
timer.timeout.connect(poll)
timer.start(5)
app.exec()
"""


def launch(code: str, *args: str, cache: str = "off") -> tuple[float, float, str]:
    """(wall seconds from launch to the first paint, the child's CPU seconds by then, its output);
    ``cache``: the decoded-series cache folder the child uses ("off": none)."""
    environment = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    # An installed SynthView runs from compiled bytecode; a development shell that sets
    # PYTHONDONTWRITEBYTECODE would have every start compile app/ from source.
    environment.pop("PYTHONDONTWRITEBYTECODE", None)
    environment["SYNTHVIEW_CACHE_DIR"] = cache  # never the user's own cache
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env=environment,
    )
    output = []
    for line in process.stdout:
        output.append(line)
        if line.startswith("PAINTED"):
            elapsed = time.perf_counter() - started
            cpu = float(line.split()[1])  # all its threads, since the process started
            break
    else:
        raise RuntimeError("the window never painted:\n" + "".join(output))
    output.append(process.stdout.read())  # the phases come when the child is done
    process.wait(60)
    return elapsed, cpu, "".join(output)


def print_phases(output: str) -> None:
    phases = next(line for line in output.splitlines() if line.startswith("PHASES"))
    names_times, heavy = phases.removeprefix("PHASES ").split(" HEAVY ")
    previous = 0.0
    for entry in names_times.split(";"):
        name, at = entry.split("=")
        print(f"    {name:<20} at {float(at):.2f} s (+{float(at) - previous:.2f} s)")
        previous = float(at)
    print(f"    heavy modules loaded when the tools were built: {heavy}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--demo", default=str(DEMO), help="what the window opens (default: the demo study)")
    args = parser.parse_args()
    import tempfile

    # Two starts of SynthView: reopening a study it has shown before (its decoded-series cache
    # holds it: no DICOM decoding, no pydicom), and the first opening of a study (cache off:
    # pydicom's import and the decoding of every file).
    sides = {"bare": [], "reopen": [], "first open": []}
    cpu = {name: [] for name in sides}
    outputs = {}
    with tempfile.TemporaryDirectory() as folder:
        settings = str(Path(folder) / "settings.ini")
        cache = str(Path(folder) / "decoded")
        starts = {
            "bare": lambda: launch(BARE),
            "reopen": lambda: launch(SYNTHVIEW, args.demo, str(ROOT), settings, cache=cache),
            "first open": lambda: launch(SYNTHVIEW, args.demo, str(ROOT), settings, cache="off"),
        }
        # One start of each, not timed: bytecode written, files in the system's cache (as for
        # every start of an installed viewer but its very first), the study in SynthView's.
        for start in starts.values():
            start()
        for _ in range(args.rounds):
            for name, start in starts.items():  # alternated: the machine's load hits all alike
                elapsed, used, output = start()
                sides[name].append(elapsed)
                cpu[name].append(used)
                outputs[name] = output
    bare = statistics.median(sides["bare"])
    print(f"bare PySide6 window, launch to first paint: median {bare:.2f} s of {args.rounds} (fastest {min(sides['bare']):.2f} s)")
    for name in ("reopen", "first open"):
        wall, used = statistics.median(sides[name]), statistics.median(cpu[name])
        # Each start against the bare start just before it (the machine's load comes in bursts
        # that the medians of the two sides may catch apart).
        paired = sorted(ours / theirs for ours, theirs in zip(sides[name], sides["bare"], strict=True))
        print(
            f"SynthView window with the demo on screen, {name}: median {wall:.2f} s = {wall / bare:.1f}x bare"
            f" (target < 3x); CPU by then {used:.2f} s = {used / statistics.median(cpu['bare']):.1f}x bare's;"
            f" start by start: median {statistics.median(paired):.1f}x ({paired[0]:.1f}x-{paired[-1]:.1f}x),"
            f" fastest against fastest {min(sides[name]) / min(sides['bare']):.1f}x"
        )
        print_phases(outputs[name])
    print(f"load average: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
