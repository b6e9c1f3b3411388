"""Reader-study costs, as ratios against baselines measured in the same process.

* Durable answer: ``ReadingSession.submit`` (validation + one transaction: answer rows, audit
  rows, time row; SQLite WAL with synchronous=FULL, i.e. an fsync per answer) vs a bare
  ``INSERT`` + commit into a SQLite table with ``synchronous=OFF`` (no durability). The ratio is
  what "committed before the next case appears" costs; the absolute figure shows it is far below
  what a reader can notice.
* Package: ``create_study`` of 10 real + 10 synthetic cases (32 x 128 x 128) with the default
  blinding (percentile normalisation onto a common level set: a first pass over the sources,
  then writing, then the blinding audit) vs the same with normalisation off (one pass, the audit
  still run), and the audit alone (``study audit``) vs the whole creation.
* Analysis: the whole Van Dyke analysis (10 reader AUCs with DeLong intervals, OR-Hillis MRMC
  with jackknife covariances) vs one empirical AUC of the same data.

    .venv/bin/python bench/bench_readerstudy.py [--answers 200]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.readerstudy.analysis import analyze  # noqa: E402
from app.readerstudy.ratings import read_imrmc  # noqa: E402
from app.readerstudy.session import ReadingSession  # noqa: E402
from app.readerstudy.stats import empirical_auc  # noqa: E402
from app.readerstudy.storage import StudyStore  # noqa: E402

VAN_DYKE = ROOT / "tests" / "data" / "vandyke-roc.imrmc"


def bench_answers(count: int, folder: Path) -> tuple[float, float]:
    package = {
        "format": "synthview-reading-package/1",
        "study_id": "SBENCH",
        "seed": 1,
        "questions": [
            {"id": "call", "type": "real_synthetic", "text": "", "scale": "1-5", "required": True},
            {"id": "quality", "type": "likert", "text": "", "scale": "1-5", "required": True},
        ],
        "options": {},
        "items": [{"item_id": f"K{i:05d}", "image_ids": [f"I{i}"], "practice": False} for i in range(count)],
    }
    store = StudyStore(folder / "bench.db")
    store.register_study("SBENCH", package)
    session = ReadingSession(package, folder, store, "R1")
    start = time.perf_counter()
    while not session.finished:
        session.submit({"call": {"choice": "real", "confidence": 3}, "quality": 4}, 1.0)
    durable = (time.perf_counter() - start) / count
    store.close()

    connection = sqlite3.connect(folder / "baseline.db")
    connection.execute("PRAGMA synchronous=OFF")
    connection.execute("CREATE TABLE answers (item TEXT, value TEXT)")
    start = time.perf_counter()
    for index in range(count):
        connection.execute("INSERT INTO answers VALUES (?, ?)", (f"K{index}", "{}"))
        connection.commit()
    baseline = (time.perf_counter() - start) / count
    connection.close()
    return durable, baseline


def bench_analysis(repeat: int = 3) -> tuple[float, float]:
    rows = read_imrmc(VAN_DYKE)
    one = [r for r in rows if r.reader == "0" and r.modality == "0"]
    truth, scores = np.array([r.truth for r in one]), np.array([r.rating for r in one])
    start = time.perf_counter()
    for _ in range(repeat * 20):
        empirical_auc(truth, scores)
    single = (time.perf_counter() - start) / (repeat * 20)
    start = time.perf_counter()
    for _ in range(repeat):
        analyze(VAN_DYKE)
    whole = (time.perf_counter() - start) / repeat
    return whole, single


def bench_package(folder: Path) -> tuple[float, float, float]:
    from app.core.volume import Geometry, Volume
    from app.io.nifti import header_fields, load_nifti, save_nifti
    from app.readerstudy.audit import audit_package
    from app.readerstudy.definition import definition_from_folders
    from app.readerstudy.package import create_study

    rng = np.random.default_rng(0)
    real_dir, synthetic_dir = folder / "real", folder / "synthetic"
    for index in range(10):
        base = rng.normal(0.5, 0.1, (32, 128, 128))
        real = (np.clip(np.round(base * 255), 0, 255) * 4).astype(np.int16)
        save_nifti(Volume(real, Geometry.identity((1, 1, 2))), real_dir / f"r{index}.nii.gz")
        synthetic = (rng.normal(0.5, 0.1, (32, 128, 128)) * 912).astype(np.float32)
        save_nifti(Volume(synthetic, Geometry.identity((1, 1, 2))), synthetic_dir / f"s{index}.nii.gz")
    timings = []
    for name, normalisation in (("default", "percentile"), ("plain", "none")):
        definition = definition_from_folders(real_dir, synthetic_dir, "bench", seed=1)
        definition.options.intensity_normalisation = normalisation
        start = time.perf_counter()
        create_study(
            definition, folder / name, load_nifti, save_nifti, accept_leaks=True, header_fields=header_fields
        )
        timings.append(time.perf_counter() - start)
    start = time.perf_counter()
    audit_package(folder / "default", load_nifti, header_fields)
    return timings[0], timings[1], time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        durable, baseline = bench_answers(args.answers, Path(folder))
    print(
        f"durable answer (WAL, synchronous=FULL, audit): {durable * 1e3:.2f} ms per case = "
        f"{durable / baseline:.1f}x a non-durable bare insert+commit"
    )
    with tempfile.TemporaryDirectory() as folder:
        blinded, plain, audit = bench_package(Path(folder))
    print(
        f"package of 20 cases (32x128x128): default blinding {blinded:.2f} s = {blinded / plain:.2f}x"
        f" without normalisation ({plain:.2f} s); the audit alone is {audit / blinded:.0%} of it ({audit:.2f} s)"
    )
    whole, single = bench_analysis()
    print(
        f"Van Dyke full analysis (10 AUCs + DeLong + OR-Hillis): {whole / single:.0f}x one empirical AUC ({whole:.3f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
