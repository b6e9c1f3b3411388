"""Play the adversary who has only the reading package: from file-level features and simple image
statistics, can they tell real from synthetic? Before the fix (and with normalisation off) they
could: the number of distinct values and the share of whole numbers split the classes perfectly
(in the issue's data also file size and maximum). ``study create`` now refuses such a package,
and the default folders-mode package leaves the adversary at chance level."""

from __future__ import annotations

import json

import numpy as np
import pytest

from main import main
from tests.readerstudy.conftest import write_cases

CASES = 10  # per class: a perfect split by chance has probability 2 / C(20, 10) = 1e-5


def _adversary_features(reading_dir) -> tuple[dict[str, list], list[bool]]:
    """The adversary's own measurements (no SynthView code), and the truth to score them."""
    package = json.loads((reading_dir / "study.json").read_text())
    truth = json.loads((reading_dir.parent / "truth" / "truth.json").read_text())["items"]
    import nibabel as nib

    features: dict[str, list] = {}
    labels = []
    paths = sorted((reading_dir / "images").iterdir(), key=lambda p: (p.stat().st_mtime_ns, p.stat().st_ino))
    write_rank = {p.stem: rank for rank, p in enumerate(paths)}
    for position, item in enumerate(package["items"]):
        (image_id,) = item["image_ids"]
        path = reading_dir / "images" / f"{image_id}{package['image_suffix']}"
        raw = path.read_bytes()
        voxels = np.asarray(nib.load(str(path)).dataobj, dtype=np.float64)
        measured = {
            "file size": len(raw),
            "header bytes": raw[:348].hex(),
            "levels": np.unique(voxels).size,
            "maximum": voxels.max(),
            "minimum": voxels.min(),
            "whole-number share": float(np.mean(voxels == np.round(voxels))),
            "noise floor": float(np.median(np.abs(np.diff(voxels, axis=0)))),
            "mean": float(voxels.mean()),
            "position": position,
            "write order": write_rank[image_id],
        }
        for name, value in measured.items():
            features.setdefault(name, []).append(value)
        labels.append(truth[item["item_id"]]["truth"] == "synthetic")
    return features, labels


def _best_threshold_accuracy(values: list, labels: list[bool]) -> float:
    """The best accuracy of any rule 'synthetic when value > t' (or < t, or in a set of values)."""
    labels_array = np.asarray(labels)
    if not all(isinstance(v, int | float | np.number) for v in values):
        groups: dict = {}
        for value, label in zip(values, labels, strict=True):
            groups.setdefault(value, []).append(label)
        return sum(max(sum(g), len(g) - sum(g)) for g in groups.values()) / len(values)
    array = np.asarray(values, dtype=float)
    best = 0.0
    for threshold in np.unique(array):
        called = array > threshold
        accuracy = float(np.mean(called == labels_array))
        best = max(best, accuracy, 1 - accuracy)
    return best


def _nearest_neighbour_accuracy(features: dict[str, list], labels: list[bool]) -> float:
    """Leave-one-out 1-nearest-neighbour over the standardised image statistics together."""
    names = ["file size", "levels", "maximum", "minimum", "whole-number share", "noise floor", "mean"]
    matrix = np.array([features[name] for name in names], dtype=float).T
    spread = matrix.std(axis=0)
    matrix = (matrix - matrix.mean(axis=0)) / np.where(spread > 0, spread, 1)
    correct = 0
    for index in range(len(labels)):
        distance = np.linalg.norm(matrix - matrix[index], axis=1)
        distance[index] = np.inf
        correct += labels[int(np.argmin(distance))] == labels[index]
    return correct / len(labels)


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    return write_cases(tmp_path_factory.mktemp("adversary"), real=CASES, synthetic=CASES)


def _create(sources, out_dir, *extra) -> int:
    real_dir, synthetic_dir = sources
    return main(
        ["study", "create", "--real", str(real_dir), "--synthetic", str(synthetic_dir), str(out_dir), *extra]
    )


def test_without_normalisation_the_adversary_wins_and_create_refuses(tmp_path, sources, capsys):
    assert _create(sources, tmp_path / "leaky", "--intensity-normalisation", "none") == 2
    captured = capsys.readouterr()
    assert "blinding leak" in captured.err and "levels" in captured.err and "--accept-leaks" in captured.err
    assert "separates perfectly" in captured.out  # the audit table, printed
    assert not (tmp_path / "leaky" / "reading" / "study.json").exists()
    assert not list((tmp_path / "leaky").rglob("*.nii"))  # nothing half-written is left
    # Shipped anyway: the adversary names every image from the number of distinct values.
    assert _create(sources, tmp_path / "leaky", "--intensity-normalisation", "none", "--accept-leaks") == 0
    features, labels = _adversary_features(tmp_path / "leaky" / "reading")
    assert _best_threshold_accuracy(features["levels"], labels) == 1.0
    assert _best_threshold_accuracy(features["whole-number share"], labels) == 1.0
    capsys.readouterr()
    assert main(["study", "audit", str(tmp_path / "leaky")]) == 2
    assert "levels" in capsys.readouterr().err


def test_the_default_folders_package_leaves_the_adversary_at_chance(tmp_path, sources, capsys):
    assert _create(sources, tmp_path / "study") == 0
    assert "blinding audit" in capsys.readouterr().out
    features, labels = _adversary_features(tmp_path / "study" / "reading")
    # One representation: the same size, header, level count, range and quantisation for all.
    for name in ("file size", "header bytes", "levels", "maximum", "minimum", "whole-number share"):
        assert len(set(features[name])) == 1, name
    for name, values in features.items():
        assert _best_threshold_accuracy(values, labels) < 1.0, f"{name} separates real from synthetic"
    assert _nearest_neighbour_accuracy(features, labels) < 0.9
    assert main(["study", "audit", str(tmp_path / "study")]) == 0


def test_spacing_and_shape_differences_are_refused_until_one_grid_is_asked_for(tmp_path, capsys):
    from app.core.volume import Geometry, Volume
    from app.io.nifti import save_nifti
    from tests.readerstudy.conftest import phantom

    rng = np.random.default_rng(11)
    real_dir, synthetic_dir = tmp_path / "real", tmp_path / "synthetic"
    for index in range(CASES):
        save_nifti(
            Volume(phantom(rng, (4, 12, 10)) * 1000, Geometry.identity((1.0, 1.0, 2.0))),
            real_dir / f"r{index}.nii.gz",
        )
        save_nifti(
            Volume(phantom(rng, (5, 14, 12)) * 1000, Geometry.identity((0.9, 0.9, 1.8))),
            synthetic_dir / f"s{index}.nii.gz",
        )
    assert _create((real_dir, synthetic_dir), tmp_path / "a") == 2
    err = capsys.readouterr().err
    assert "spacing_mm" in err and "shape" in err and "--common-spacing-mm" in err and "--common-shape" in err
    assert (
        _create((real_dir, synthetic_dir), tmp_path / "b", "--common-spacing-mm", "1", "--common-shape") == 0
    )
    features, labels = _adversary_features(tmp_path / "b" / "reading")
    assert len(set(features["file size"])) == 1 and len(set(features["header bytes"])) == 1


def test_padding_to_a_common_shape_moves_content_by_the_recorded_shift():
    """The padded grid keeps the source's origin (so padding does not show in the header); the
    content moves by ``shift_lps_mm``, which the truth file's findings follow."""
    from app.core.volume import Geometry, Volume
    from app.readerstudy.definition import StudyOptions
    from app.readerstudy.package import blinded_volume

    voxels = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    source = Volume(voxels, Geometry(np.array([10.0, -5.0, 3.0]), np.array([1.0, 2.0, 3.0]), np.eye(3)))
    padded = blinded_volume(source, "I", options=StudyOptions(), shape_kji=(4, 5, 8))
    assert padded.shape_kji == (4, 5, 8)
    np.testing.assert_allclose(padded.geometry.origin_lps_mm, source.geometry.origin_lps_mm)
    shift = np.asarray(padded.metadata["shift_lps_mm"])
    for index in ([0, 0, 0], [3, 2, 1], [1, 1, 0]):
        where = np.asarray(source.geometry.lps_from_index(index)) + shift
        assert padded.value_at_lps(where) == pytest.approx(source.voxels[index[2], index[1], index[0]])


def test_folders_mode_has_a_flag_for_every_definition_option(tmp_path, capsys):
    """Every field of StudyOptions can be set from the command line (folders mode has no file)."""
    import argparse
    from dataclasses import fields

    from app.cli.study import _apply_option_flags, add_arguments
    from app.readerstudy.definition import StudyOptions

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        ["create", "--real", "r", "--synthetic", "s", "out", "--no-shuffle", "--allow-answer-modification",
         "--allow-case-navigation", "--window-level-locked", "--no-allow-scroll", "--time-limit-s", "30",
         "--practice-feedback", "--common-spacing-mm", "1.5", "--intensity-normalisation", "percentile",
         "--intensity-percentiles", "2", "98", "--intensity-range", "0", "1000", "--intensity-levels", "256",
         "--common-shape", "--localisation-tolerance-mm", "7"]
    )  # fmt: skip
    options = StudyOptions()
    _apply_option_flags(args, options)
    changed = {
        f.name for f in fields(StudyOptions) if getattr(options, f.name) != getattr(StudyOptions(), f.name)
    }
    assert changed == {f.name for f in fields(StudyOptions)}  # every option reached by its flag
    assert options.intensity_percentiles == [2.0, 98.0] and options.intensity_levels == 256


def test_the_common_level_count_is_what_every_image_fills():
    from app.readerstudy.package import (
        INTENSITY_LEVELS,
        common_level_count,
        fillable_levels,
        normalise_intensity,
    )

    rng = np.random.default_rng(2)
    eight_bit = (np.round(rng.uniform(0, 255, (8, 32, 32))) * 4).astype(np.int16)  # 256 values, step 4
    continuous = rng.uniform(0, 1020, (16, 64, 64))
    levels = [fillable_levels(eight_bit), fillable_levels(continuous)]
    assert 200 <= levels[0] <= 256 and levels[1] > levels[0]
    common = common_level_count(levels, None)
    assert common == levels[0]
    for voxels in (eight_bit, continuous):  # both fill every one of the common levels
        assert np.unique(normalise_intensity(voxels, levels=common)).size == common
    # A blank image (one value) does not flatten the others; nothing usable: the default.
    assert common_level_count([*levels, 1], None) == common
    assert common_level_count([1, 1], None) == INTENSITY_LEVELS
    assert common_level_count(levels, 4096) == 4096  # asked for: as asked


def test_a_screenshot_does_not_take_over_a_readers_live_session(created_study, capsys):
    from app.readerstudy.package import load_package
    from app.readerstudy.session import ReadingSession
    from app.readerstudy.storage import StudyStore

    created, _ = created_study
    package, reading_dir = load_package(created.reading_dir)
    live = ReadingSession(package, reading_dir, StudyStore(created.database_url, create=False), "R1")
    shot = created.reading_dir.parent / "shot.png"
    assert main(["study", "read", str(created.reading_dir), "--reader", "R1", "--screenshot", str(shot)]) == 0
    live.submit({"call": {"choice": "real", "confidence": 3}, "quality": 3}, 1.0)  # still the live one
    live.store.close()
