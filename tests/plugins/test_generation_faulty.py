"""Faulty generators from noise: a wrong latent_dim, a malformed output, NaN samples.

Sampling must stop with one PluginError line a researcher can act on (the gallery shows it, the
diversity CLI prints it and exits 2), never a TorchScript traceback or figures computed on NaN.
"""

from __future__ import annotations

import pytest
import torch

from app.plugins.contract import check_plugin
from app.plugins.errors import PluginError
from app.plugins.generation import SampleGenerator
from main import main
from tests.plugins.test_diversity_check import generation_plugin, real_volume


class WrongLatentGenerator(torch.nn.Module):
    """Declares latent_dim 7 but its first layer takes 16 values."""

    def __init__(self) -> None:
        super().__init__()
        self.latent_dim = 7
        self.linear = torch.nn.Linear(16, 64 * 64)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.linear(z)).view(-1, 1, 64, 64)


class NaNGenerator(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.latent_dim = 8

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        image = torch.zeros(z.shape[0], 1, 64, 64) + 0 * z.sum()
        image[1:, :, 10:20, 10:20] = float("nan")  # every sample but the first
        return image


class ThreeDimensionalOutput(torch.nn.Module):
    """(n, H, W): no channel axis."""

    def __init__(self) -> None:
        super().__init__()
        self.latent_dim = 8

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.zeros(z.shape[0], 64, 64) + 0 * z.sum()


def test_a_wrong_latent_dim_is_one_line_naming_it(tmp_path):
    generator = SampleGenerator(generation_plugin(tmp_path, module=WrongLatentGenerator()))
    with pytest.raises(PluginError) as caught:
        generator.sample([0, 1])
    message = str(caught.value)
    assert "latent_dim 7" in message and "mat1 and mat2 shapes cannot be multiplied" in message
    assert "\n" not in message and "TorchScript interpreter" not in message


def test_nan_samples_are_refused_naming_their_seeds(tmp_path):
    generator = SampleGenerator(generation_plugin(tmp_path, module=NaNGenerator()))
    with pytest.raises(PluginError, match=r"NaN or infinite values for seeds 6, 7"):
        generator.sample([5, 6, 7])
    assert len(generator.sample([5])) == 1  # a finite sample is still fine


def test_an_output_without_a_channel_axis_is_a_clear_error(tmp_path):
    generator = SampleGenerator(generation_plugin(tmp_path, module=ThreeDimensionalOutput()))
    with pytest.raises(PluginError, match=r"gave shape \(2, 64, 64\), not \(n, C, H, W\)"):
        generator.sample([0, 1])


def test_plugins_check_shows_the_torchscript_error_itself(tmp_path):
    steps = check_plugin(generation_plugin(tmp_path, module=WrongLatentGenerator()))
    assert not steps[-1].passed
    assert "mat1 and mat2 shapes cannot be multiplied" in steps[-1].detail


@pytest.mark.parametrize("module", [WrongLatentGenerator(), NaNGenerator(), ThreeDimensionalOutput()])
def test_diversity_cli_gives_a_message_not_a_traceback_or_nan_figures(tmp_path, capsys, module):
    from app.io.nifti import save_nifti

    folder = generation_plugin(tmp_path, module=module)
    real_path = save_nifti(real_volume(), tmp_path / "real.nii.gz")
    assert main(["plugins", "diversity", str(folder), "--real", str(real_path), "--samples", "3"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("plugins diversity: error: copy-gan")
    assert "nan" not in captured.out.lower()
