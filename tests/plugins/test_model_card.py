"""The model card's assessment line reads as plain English for every outcome."""

from pathlib import Path

import pytest

from app.plugins.training.model_card import assessment

PLUGINS_DIR = Path(__file__).resolve().parents[2] / "plugins"


def _heldout(output: dict, baseline: dict) -> dict:
    return {"output_vs_truth": output, "input_vs_truth": baseline}


BASELINE = {"mae": 0.02, "psnr_db": 30.0, "ssim": 0.90}


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (
            {"mae": 0.01, "psnr_db": 32.0, "ssim": 0.95},
            "closer to the truth than the degraded input by every figure (MAE, PSNR, SSIM).",
        ),
        (
            {"mae": 0.03, "psnr_db": 29.0, "ssim": 0.85},
            "NOT closer to the truth than the degraded input by any figure (MAE, PSNR, SSIM).",
        ),
        (
            {"mae": 0.01, "psnr_db": 31.0, "ssim": 0.85},
            "closer to the truth than the degraded input by MAE, PSNR; it is NOT closer by SSIM.",
        ),
    ],
)
def test_assessment_names_the_figures_without_double_negatives(output, expected):
    line = assessment(_heldout(output, BASELINE))[0]
    assert line == f"**Assessment:** on the held-out head the output is {expected}"
    assert "no figure" not in line


def test_shipped_cards_have_no_double_negative():
    cards = list(PLUGINS_DIR.glob("*/MODEL_CARD.md"))
    assert cards
    for card in cards:
        assert "NOT closer by no figure" not in card.read_text(), card


def test_the_benchmark_section_goes_into_the_card_and_survives_a_rerender(tmp_path):
    import json
    import shutil

    import yaml

    from app.plugins.training.model_card import BENCHMARK_FILE
    from app.plugins.training.model_card import main as render_cards

    folder = tmp_path / "mr_t1_pseudo_healthy"
    shutil.copytree(PLUGINS_DIR / "mr_t1_pseudo_healthy", folder)
    (folder / BENCHMARK_FILE).write_text("## Hallucination check (test)\n\n- region AUROC 0.5\n")
    render_cards([str(folder)])
    card = (folder / "MODEL_CARD.md").read_text()
    assert card.index("## Hallucination check (test)") < card.index("## Intended use")
    # The residual's AUROC is named for what it is: voxel level, not region level.
    assert "VOXEL AUROC" in card and "Region AUROC of the residual" not in card
    assert yaml.safe_load((folder / "plugin.yaml").read_text())["name"] == "mr-t1-pseudo-healthy"
    assert json.loads((folder / "metrics.json").read_text())


def test_every_shipped_card_says_the_held_out_head_is_the_demo_and_what_was_chosen_on_it():
    cards = sorted(PLUGINS_DIR.glob("*/MODEL_CARD.md"))
    assert len(cards) == 5  # four image plugins and the tissue segmentation
    for card in cards:
        text = card.read_text()
        assert "never seen in training" not in text, card
        assert "is also the demo study's head" in text, card
        assert "Chosen on this head" in text or "nothing for this generator was chosen on this head" in text, card


def test_a_run_without_a_record_of_held_out_use_is_called_optimistic(tmp_path):
    import json
    import shutil

    from app.plugins.training.model_card import main as render_cards

    folder = tmp_path / "mr_t1_denoise"
    shutil.copytree(PLUGINS_DIR / "mr_t1_denoise", folder)
    record = json.loads((folder / "metrics.json").read_text())
    del record["heldout_use"]  # a retrain writes a fresh record
    (folder / "metrics.json").write_text(json.dumps(record))
    render_cards([str(folder)])
    card = (folder / "MODEL_CARD.md").read_text()
    assert "was NOT recorded for this run: assume these figures are optimistic" in card
    assert "is also the demo study's head" in card


def test_the_training_line_names_the_lesion_free_crops_and_white_matter_only_dark_lesions():
    from app.plugins.training.model_card import _residual_description

    training = {"network": "ResidualUNet(ngf=16)", "crop": 64, "lesion_weight": 5.0, "identity_fraction": 1 / 3}
    plain = _residual_description(training)
    assert "33% of every batch lesion-free crops" in plain and "white matter" not in plain
    placed = _residual_description({**training, "dark_lesions_in_white_matter": True})
    assert "dark training lesions only in white matter, clear of CSF" in placed


def test_the_training_line_names_mined_crops_and_domain_augmentation():
    from app.plugins.training.model_card import _residual_description

    training = {"network": "ResidualUNet(ngf=16)", "crop": 64, "lesion_weight": 10.0, "identity_fraction": 0.5}
    plain = _residual_description(training)
    assert "look-alike mining" not in plain and "blur" not in plain
    mined = _residual_description({**training, "mined_share": 0.5, "domain_augment": True})
    assert "50% of them centred on healthy training-head spots the initial weights changed" in mined
    assert "Gaussian blur of 0-1.5 mm" in mined


def test_a_recipe_card_reproduces_with_its_recorded_command_and_start_weights():
    """The shipped pseudo-healthy weights are a fine-tune by a named recipe: the card's Reproduce
    block gives the run's exact command and where its start weights come from, not the plain one."""
    import json

    import yaml

    from app.plugins.training.model_card import render_model_card

    folder = PLUGINS_DIR / "mr_t1_pseudo_healthy"
    record = json.loads((folder / "metrics.json").read_text())
    manifest = yaml.safe_load((folder / "plugin.yaml").read_text())
    training = record["training"]
    assert training["recipe"] == "ph-v3-domain"
    card = render_model_card(manifest, record)
    reproduce = card.split("## Reproduce")[1]
    assert training["command"] in reproduce and "--recipe ph-v3-domain --init-weights" in reproduce
    assert training["initial_weights_source"] in reproduce
    assert (folder / "MODEL_CARD.md").read_text().split("## Reproduce")[1] == reproduce
    plain = {**record, "training": {k: v for k, v in training.items() if k != "recipe"}}
    assert "--plugins mr_t1_pseudo_healthy [--quick]" in render_model_card(manifest, plain)
