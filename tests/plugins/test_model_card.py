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
