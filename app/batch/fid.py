"""FID over a cohort (``batch synthesize --fid-weights PATH``): the inputs' slices against the
outputs' slices, pooled over every finished case.

FID is a statistic of two image sets; over one volume it rests on a few dozen slices, over a
cohort on up to ``fid_metric.MAX_IMAGES`` slices per case. Each worker stores the FID network's
features of a case (``case_run.FID_FEATURES_FILE``); this module checks the job before the run and
pools the stored features after it. The figure compares the inputs with the outputs, so it is
offered only for a plugin whose output is of the input's kind (a denoiser, a super-resolution
plugin), and, like every figure of a network trained on natural photographs, it is not
validated for medical images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.batch.case_run import FID_FEATURES_FILE
from app.batch.results import CaseRow


class FidJobRefused(ValueError):
    """--fid-weights with a plugin or file it cannot go with: the one-line reason."""


def check_fid_job(manifest, path: str) -> str:
    """The SHA-256 of the FID weights file after checking that it is one (read as data only) and
    that the plugin keeps the input's kind; else ``FidJobRefused`` (or the loader's error)."""
    from app.plugins.fid_metric import load_fid

    if not manifest.keeps_image_kind:
        raise FidJobRefused(
            f"--fid-weights: {manifest.name} ({manifest.task}) does not keep the input's kind; the FID of"
            " its inputs against its outputs would compare two kinds of image"
        )
    return load_fid(path).weights_sha256


def cohort_fid(out_dir: str | Path, rows: list[CaseRow], weights_file: str, weights_sha256: str) -> dict:
    """The cohort's FID entry (``fid_metric.FidEntry`` as a dict) with the number of cases pooled."""
    from app.plugins.fid_metric import FEATURES, entry_from_features

    inputs, outputs, cases = [], [], 0
    for row in rows:
        path = Path(out_dir) / "cases" / row.case_id / FID_FEATURES_FILE
        if row.status not in ("done", "skipped") or not path.exists():
            continue
        with np.load(path) as stored:
            inputs.append(stored["input"])
            outputs.append(stored["output"])
        cases += 1
    empty = np.zeros((0, FEATURES))
    entry = entry_from_features(
        np.concatenate(inputs) if inputs else empty,
        np.concatenate(outputs) if outputs else empty,
        Path(weights_file).name,
        weights_sha256,
        definition=(
            "FID (pytorch-fid's Inception-v3, 2048-d pool features) between the inputs' and the outputs'"
            f" axial slices, pooled over {cases} case(s), each scaled by its input's range, grey as RGB,"
            " resized to 299 x 299"
        ),
    ).to_dict()
    return {**entry, "cases": cases}
