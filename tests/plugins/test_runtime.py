"""Runtime: slice-by-slice equivalence, plane handling, tiling, 2.5D, errors, OOM, cancel."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import app.plugins.runtime as runtime
from app.core.tilt import TiltCorrectionRecord
from app.core.volume import Geometry, Volume
from app.plugins.errors import InputMismatchError, SynthesisCancelled
from app.plugins.loading import Generator, LoadedPlugin, load_plugin
from app.plugins.manifest import load_manifest
from app.plugins.normalization import fit_input_scaling, to_network
from app.plugins.plane_stack import plane_layout
from app.plugins.runtime import RunOptions, synthesize
from app.plugins.sliding_window import run_tiled, tile_starts
from tests.plugins.plugin_factory import make_builtin_plugin, make_cycle_plugin, make_torchscript_plugin


class SmallConv(torch.nn.Module):
    """Two 3x3 convolutions (receptive field 5 px), tanh: local, so tiling can be checked."""

    def __init__(self, in_channels: int = 1) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(in_channels, 4, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(4, 1, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(x))


class NextMinusPrevious(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 2:3] - x[:, 0:1]


def mr_volume(shape=(5, 12, 16), direction=None, modality="MR") -> Volume:
    rng = np.random.default_rng(0)
    voxels = rng.uniform(0, 1000, size=shape).astype(np.float32)
    geometry = Geometry(
        np.array([10.0, -20.0, 30.0]),
        np.array([0.8, 0.9, 2.5]),
        direction if direction is not None else np.eye(3),
    )
    return Volume(voxels, geometry, modality=modality, name="t1.nii.gz")


@pytest.fixture(scope="module")
def resnet_plugin(tmp_path_factory) -> LoadedPlugin:
    return load_plugin(load_manifest(make_builtin_plugin(tmp_path_factory.mktemp("plugins") / "resnet")))


def test_2d_plugin_on_a_volume_equals_slice_by_slice(resnet_plugin):
    volume = mr_volume()
    result = synthesize(resnet_plugin, volume, RunOptions(device="cpu", batch_size=2))
    fitted = fit_input_scaling(volume.voxels, resnet_plugin.manifest.normalization)
    normalized = to_network(volume.voxels, fitted)
    for k in range(volume.voxels.shape[0]):
        with torch.inference_mode():
            alone = resnet_plugin.generator(torch.from_numpy(normalized[k][None, None]))[0, 0].numpy()
        np.testing.assert_allclose(result.volume.voxels[k], alone * 1000.0, atol=0.05)  # HU


def test_output_keeps_geometry_and_is_marked_synthetic(resnet_plugin):
    volume = mr_volume()
    result = synthesize(resnet_plugin, volume, RunOptions(device="cpu", seed=7))
    out = result.volume
    assert out.geometry is volume.geometry and out.voxels.shape == volume.voxels.shape
    assert out.is_synthetic and out.modality == "CT" and out.units == "HU"
    provenance = out.provenance
    assert (
        provenance.plugin_name == "tiny-mr2ct" and provenance.weights_sha256 == resnet_plugin.weights_sha256
    )
    assert provenance.device == "cpu" and provenance.seed == 7 and provenance.duration_s >= 0
    assert provenance.parameters["plane"] == "axial" and provenance.label().startswith("SYNTHETIC")
    assert -1000.0 <= out.voxels.min() and out.voxels.max() <= 1000.0


def test_wrong_input_modality_is_refused_unless_allowed(resnet_plugin):
    ct = mr_volume(modality="CT")
    with pytest.raises(InputMismatchError, match="expects MR input but this volume is CT"):
        synthesize(resnet_plugin, ct, RunOptions(device="cpu"))
    result = synthesize(resnet_plugin, ct, RunOptions(device="cpu", allow_modality_mismatch=True))
    assert any("run anyway" in m for m in result.messages)


def test_axial_plugin_sees_the_same_anatomy_whatever_the_array_order(tmp_path):
    plugin = load_plugin(load_manifest(make_torchscript_plugin(tmp_path / "conv", SmallConv())))
    lps = mr_volume(shape=(4, 10, 12))
    # Same patient content stored RAS-style: i runs right->left reversed, j reversed.
    flipped_direction = np.diag([-1.0, -1.0, 1.0])
    ras = Volume(
        np.ascontiguousarray(lps.voxels[:, ::-1, ::-1]),
        Geometry(lps.geometry.origin_lps_mm, lps.geometry.spacing_mm, flipped_direction),
        modality="MR",
    )
    out_lps = synthesize(plugin, lps, RunOptions(device="cpu")).volume.voxels
    out_ras = synthesize(plugin, ras, RunOptions(device="cpu")).volume.voxels
    np.testing.assert_allclose(out_ras, out_lps[:, ::-1, ::-1], atol=1e-4)


def test_plane_layouts_for_an_lps_volume():
    layout = plane_layout(np.eye(3), "coronal")
    assert layout.axes == (1, 0, 2) and layout.flips == (False, True, False)
    voxels = np.arange(24).reshape(2, 3, 4)
    for plane in ("axial", "coronal", "sagittal"):
        layout = plane_layout(np.eye(3), plane)
        assert np.array_equal(layout.from_stack(layout.to_stack(voxels)), voxels)


def test_sliding_window_matches_whole_image_away_from_seams():
    model = SmallConv().eval()
    images = torch.rand(2, 1, 40, 52) * 2 - 1
    with torch.inference_mode():
        whole = model(images)
        tiled = run_tiled(model, images, tile_shape=(16, 16), overlap=0.5)
    seam = np.zeros((40, 52), bool)
    margin = 2  # receptive-field radius of two 3x3 convolutions
    for axis, size in ((0, 40), (1, 52)):
        for start in tile_starts(size, 16, 0.5):
            for edge in (start, start + 16):
                if 0 < edge < size:  # interior tile borders only
                    lo, hi = max(0, edge - margin), min(size, edge + margin)
                    if axis == 0:
                        seam[lo:hi, :] = True
                    else:
                        seam[:, lo:hi] = True
    assert (~seam).sum() > 0.2 * seam.size
    np.testing.assert_allclose(tiled.numpy()[..., ~seam], whole.numpy()[..., ~seam], atol=1e-5)
    assert float((tiled - whole).abs().max()) < 0.5  # seams blend, no blow-ups


def test_small_image_is_padded_to_the_patch_and_cropped_back():
    model = torch.nn.Identity()
    images = torch.rand(1, 1, 5, 7)
    out = run_tiled(model, images, tile_shape=(16, 16))
    assert torch.allclose(out, images)
    out = run_tiled(model, images, tile_shape=None, size_multiple=4)
    assert torch.allclose(out, images)


def test_2_5d_feeds_neighbouring_slices_with_edges_repeated(tmp_path):
    folder = make_torchscript_plugin(
        tmp_path / "ctx",
        NextMinusPrevious(),
        dimensionality="2.5D",
        context_slices=3,
        normalization={"input": {"method": "window", "low": 0, "high": 4}, "output": {"method": "none"}},
    )
    voxels = np.repeat(np.arange(5, dtype=np.float32)[:, None, None], 8, axis=1).repeat(8, axis=2)
    volume = Volume(voxels, Geometry.identity(), modality="MR")
    out = synthesize(
        load_plugin(load_manifest(folder)), volume, RunOptions(device="cpu", batch_size=2)
    ).volume.voxels
    # normalised slice values -1, -0.5, 0, 0.5, 1; next - previous with clamped ends:
    expected = np.array([0.5, 1.0, 1.0, 1.0, 0.5], np.float32)
    np.testing.assert_allclose(out[:, 3, 3], expected, atol=1e-6)


class _OomAboveBatch(Generator):
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.seen: list[int] = []

    def to(self, device):
        return self

    def __call__(self, images):
        if images.shape[0] > self.limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        self.seen.append(images.shape[0])
        return torch.tanh(images)


def test_out_of_memory_halves_the_batch(resnet_plugin):
    fake = _OomAboveBatch(limit=2)
    plugin = LoadedPlugin(resnet_plugin.manifest, fake, "0" * 64)
    result = synthesize(plugin, mr_volume(shape=(7, 8, 8)), RunOptions(device="cpu", batch_size=8))
    assert max(fake.seen) == 2 and sum(fake.seen) == 7
    assert "retrying with batch size 4" in result.messages[-2] or any(
        "batch size 2" in m for m in result.messages
    )
    assert result.volume.provenance.parameters["batch_size"] == 2


class _OomOffCpu(Generator):
    def __init__(self) -> None:
        self.device = torch.device("cpu")

    def to(self, device):
        self.device = device
        return self

    def __call__(self, images):
        if self.device.type != "cpu":
            raise RuntimeError("MPS backend out of memory")
        return torch.tanh(images)


def test_out_of_memory_at_batch_one_falls_back_to_cpu_and_says_so(resnet_plugin, monkeypatch):
    monkeypatch.setattr(runtime, "choose_device", lambda preference: torch.device("meta"))
    upload = runtime._upload  # the volume stays in CPU memory; only the network "runs" on meta
    monkeypatch.setattr(runtime, "_upload", lambda voxels, device: upload(voxels, torch.device("cpu")))
    plugin = LoadedPlugin(resnet_plugin.manifest, _OomOffCpu(), "0" * 64)
    result = synthesize(plugin, mr_volume(shape=(3, 8, 8)), RunOptions(batch_size=2))
    assert result.device == "cpu" and result.volume.provenance.device == "cpu"
    assert any("finishing on the CPU" in m for m in result.messages)


def test_cancel_stops_the_run_and_progress_is_reported(resnet_plugin):
    reported: list[float] = []
    with pytest.raises(SynthesisCancelled):
        synthesize(
            resnet_plugin,
            mr_volume(shape=(6, 8, 8)),
            RunOptions(device="cpu", batch_size=2),
            progress=lambda fraction, message: reported.append(fraction),
            cancel=lambda: len(reported) >= 2,
        )
    assert reported[:2] == [0.0, pytest.approx(2 / 6)]
    reported.clear()
    synthesize(
        resnet_plugin,
        mr_volume(shape=(6, 8, 8)),
        RunOptions(device="cpu", batch_size=4),
        progress=lambda f, m: reported.append(f),
    )
    assert reported == sorted(reported) and reported[-1] == 1.0


class PointwiseConv3d(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(2)
        self.conv = torch.nn.Conv3d(1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(x))


def test_3d_plugin_with_patches_equals_the_whole_volume_for_a_pointwise_network(tmp_path):
    network = PointwiseConv3d().eval()
    common = {
        "dimensionality": "3D",
        "normalization": {
            "input": {"method": "window", "low": 0, "high": 1000},
            "output": {"method": "none"},
        },
    }
    del_plane = {"plane": None}
    folder = make_torchscript_plugin(
        tmp_path / "p3d", network, patch_size=[4, 6, 5], patch_overlap=0.5, **common, **del_plane
    )
    text = (folder / "plugin.yaml").read_text().replace("plane: null\n", "")
    (folder / "plugin.yaml").write_text(text)
    volume = mr_volume(shape=(9, 13, 11))
    out = synthesize(load_plugin(load_manifest(folder)), volume, RunOptions(device="cpu")).volume.voxels
    with torch.inference_mode():
        expected = network(torch.from_numpy(volume.voxels / 1000.0 * 2 - 1)[None, None].float())[0, 0].numpy()
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_cycle_reconstruction_uses_the_reverse_generator_and_original_scaling(tmp_path):

    from app.plugins.cycle import reconstruct_with_reverse

    # Forward and reverse generators are identities, so only the scalings act: the cycle must
    # come back to the original MR values through the HU window and the recorded percentiles.
    folder = make_cycle_plugin(tmp_path / "fwd", torch.nn.Identity(), torch.nn.Identity())
    plugin = load_plugin(load_manifest(folder))
    volume = mr_volume(shape=(3, 8, 8))
    synthesized = synthesize(plugin, volume, RunOptions(device="cpu")).volume
    reconstructed = reconstruct_with_reverse(plugin, synthesized, RunOptions(device="cpu")).volume
    # identity both ways: MR -> [-1, 1] -> HU window -> [-1, 1] -> back to the MR percentiles
    np.testing.assert_allclose(reconstructed.voxels, volume.voxels, rtol=1e-4, atol=0.05)
    assert reconstructed.provenance.plugin_name == "tiny-mr2ct-reverse" and reconstructed.modality == "MR"


def test_output_joins_its_input_patient_study_and_space_as_a_new_series(resnet_plugin, tmp_path):
    source_folder = tmp_path / "series"
    source_folder.mkdir()
    volume = mr_volume()
    volume.metadata.update(
        {
            "PatientName": "Doe^Jane",
            "PatientID": "P1",
            "StudyInstanceUID": "1.2.3",
            "FrameOfReferenceUID": "1.2.3.9",
            "SeriesInstanceUID": "1.2.3.4",
            "SeriesDescription": "T1 axial",
            "BurnedInAnnotation": "YES",
        }
    )
    volume.source_path = str(source_folder)
    volume.tilt_correction = TiltCorrectionRecord(15.0, 20.2, (60, 64), (60, 87), -1024.0)
    output = synthesize(resnet_plugin, volume, RunOptions(device="cpu")).volume
    metadata = output.metadata
    assert metadata["PatientName"] == "Doe^Jane" and metadata["StudyInstanceUID"] == "1.2.3"
    assert metadata["FrameOfReferenceUID"] == "1.2.3.9" and output.derived_from_series == str(source_folder)
    assert "SeriesInstanceUID" not in metadata and "SeriesDescription" not in metadata
    assert output.source_path == ""  # the output is not stored where the input was
    assert metadata["BurnedInAnnotation"] == "YES"  # its pixels came from pixels that show text
    assert output.tilt_correction == volume.tilt_correction  # made from tilt-corrected pixels
