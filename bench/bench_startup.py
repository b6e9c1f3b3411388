"""Start-up of bench_startup: process start to the main window with the demo on screen, against a
bare PySide6 window started the same way in the same run.

Each side runs in a fresh interpreter (what a user's double-click starts), launched one after the
other, ``--rounds`` times after one untimed start of each (bytecode compiled, files cached); the figure is the median wall time from launch to the first paint of
the window (SynthView: the end of the paint pass that drew the demo study's first panel; the
docks are in place, the tools in them built right after, "tools built"), and their ratio.
SynthView's phases (imports, window, tools, show, demo loaded and drawn) are printed from the
child's own clock.

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
window = QtWidgets.QMainWindow()
window.setCentralWidget(QtWidgets.QLabel("bare"))
window.resize(1400, 850)
window.show()
QtCore.QTimer.singleShot(0, lambda: (print("PAINTED", time.process_time(), flush=True), app.quit()))
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
# What 'main.py view DEMO' runs (app.cli.view), with settings of its own.
window = start_interactive_window([sys.argv[1]], file_services(), settings, (1400, 850), "mpr", mark)
app = QtWidgets.QApplication.instance()


class FirstPaint(QtCore.QObject):
    # The demo is on screen once the paint pass that drew it is over: the first event after a
    # Paint of the first image (FirstImageGrid) or of a panel that is not itself a Paint. The
    # panels (SliceView, interactive) replace the first image: when their paint is over too.
    painting = None

    def eventFilter(self, watched, event):
        if event.type() == QtCore.QEvent.Type.Paint and window.session.current is not None:
            kind = type(watched).__name__, type(watched.parent()).__name__
            if "FirstImageGrid" in kind:
                self.painting = self.painting or "first image"
            elif "SliceView" in kind:
                self.painting = "panels"
        elif self.painting:
            painted, self.painting = self.painting, None
            if not any(name == "demo on screen" for name, _ in phases):
                mark("demo on screen")
                print("PAINTED", time.process_time(), flush=True)
            if painted == "panels":
                app.removeEventFilter(self)
                mark("panels on screen")
        return False


first_paint = FirstPaint()
app.installEventFilter(first_paint)


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


def launch(code: str, *args: str) -> tuple[float, float, str]:
    """(wall seconds from launch to the first paint, the child's CPU seconds by then, its output)"""
    environment = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    # An installed SynthView runs from compiled bytecode; a development shell that sets
    # PYTHONDONTWRITEBYTECODE would have every start compile app/ from source.
    environment.pop("PYTHONDONTWRITEBYTECODE", None)
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--demo", default=str(DEMO), help="what the window opens (default: the demo study)")
    args = parser.parse_args()
    import tempfile

    bare_s, synthview_s, bare_cpu, synthview_cpu, phases = [], [], [], [], ""
    with tempfile.TemporaryDirectory() as folder:
        # One start of each, not timed: bytecode written, files in the system's cache (as for
        # every start of an installed viewer but its very first).
        launch(BARE)
        launch(SYNTHVIEW, args.demo, str(ROOT), str(Path(folder) / "settings.ini"))
        for _ in range(args.rounds):
            elapsed, cpu, _ = launch(BARE)
            bare_s.append(elapsed)
            bare_cpu.append(cpu)
            elapsed, cpu, output = launch(SYNTHVIEW, args.demo, str(ROOT), str(Path(folder) / "settings.ini"))
            synthview_s.append(elapsed)
            synthview_cpu.append(cpu)
            phases = next(line for line in output.splitlines() if line.startswith("PHASES"))
    bare, synthview = statistics.median(bare_s), statistics.median(synthview_s)
    print(f"bare PySide6 window, launch to first paint: median {bare:.2f} s of {args.rounds}")
    print(f"SynthView window with the demo on screen: median {synthview:.2f} s = {synthview / bare:.1f}x bare"
          " (target < 3x)")
    cpu_bare, cpu_synthview = statistics.median(bare_cpu), statistics.median(synthview_cpu)
    print(f"CPU time by the first paint (what the machine's other load does not inflate as much):"
          f" bare {cpu_bare:.2f} s, SynthView {cpu_synthview:.2f} s = {cpu_synthview / cpu_bare:.1f}x")
    print(f"load average: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")
    names_times, heavy = phases.removeprefix("PHASES ").split(" HEAVY ")
    previous = 0.0
    for entry in names_times.split(";"):
        name, at = entry.split("=")
        print(f"  {name:<20} at {float(at):.2f} s (+{float(at) - previous:.2f} s)")
        previous = float(at)
    print(f"  heavy modules loaded when the tools were built: {heavy}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
