"""plugins/README.md's guide, run: every command block, in order, in a temporary folder holding
small stand-ins for the researcher's files (a CycleGAN checkpoint, a network class and its
weights, a scan). ``python main.py ...`` lines run in-process through ``main`` and ``python
X.py`` through runpy (each would start a Python with torch: seconds apiece on a busy machine);
the shell lines (mkdir, cp, sed, sha256sum) run in bash. The quoted refusals are checked too."""

from __future__ import annotations

import re
import runpy
import shlex
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
import yaml

from app.plugins.architectures import build_generator
from app.plugins.manifest import ArchitectureSpec
from main import main

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "plugins" / "README.md"
FENCE = re.compile(r"^```(\w+)(?: (\S+))?\n(.*?)^```$", re.MULTILINE | re.DOTALL)

MY_PROJECT = '''
from app.plugins.architectures import UnetGenerator


class MyDenoiser(UnetGenerator):
    """The researcher's own network: a small U-Net with 7 halvings."""

    def __init__(self):
        super().__init__(1, 1, num_downs=7, ngf=2, norm="instance")
'''


def guide_blocks() -> list[tuple[str, str | None, str]]:
    text = GUIDE.read_text()
    section = text[text.index("# Bring your own model") :]
    return [(match[1], match[2], match[3]) for match in FENCE.finditer(section)]


def _researchers_files(folder: Path) -> None:
    torch.manual_seed(0)
    checkpoint = folder / "checkpoints" / "mr2ct" / "latest_net_G.pth"
    checkpoint.parent.mkdir(parents=True)
    spec = ArchitectureSpec("resnet_9blocks", 1, 1, ngf=64, norm="instance", use_dropout=False)
    torch.save(build_generator(spec).state_dict(), checkpoint)  # as the reference code saves it
    (folder / "my_project.py").write_text(MY_PROJECT)
    namespace = runpy.run_path(str(folder / "my_project.py"))
    torch.save(namespace["MyDenoiser"]().state_dict(), folder / "denoiser.pth")
    from monai.networks.nets import UNet  # pinned in requirements.txt (tests only)

    monai_net = UNet(spatial_dims=3, in_channels=1, out_channels=3, channels=(16, 32, 64, 128), strides=(2, 2, 2), num_res_units=2)
    torch.save(monai_net.state_dict(), folder / "monai_seg.pth")  # as the guide's export_monai.py builds it
    data = np.random.default_rng(0).uniform(0, 800, (40, 48, 4)).astype(np.float32)
    nib.save(nib.Nifti1Image(data, np.diag([1.0, 1.0, 3.0, 1.0])), folder / "scan.nii.gz")


def _run_line(line: str, folder: Path, capsys) -> str:
    words = shlex.split(line)
    if words[:2] == ["python", "main.py"]:
        rc = main(words[2:])
        out, err = capsys.readouterr()
        assert rc == 0, f"{line}\n{out}\n{err}"
        return out
    if words[0] == "python":
        runpy.run_path(str(folder / words[1]), run_name="__main__")
        return ""
    result = subprocess.run(["bash", "-ec", line], cwd=folder, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{line}\n{result.stderr}"
    return result.stdout


def test_the_guide_has_the_three_routes_and_the_orientation_check():
    blocks = guide_blocks()
    files = {name for _, name, _ in blocks if name}
    assert {"my-mr2ct/plugin.yaml", "my-denoiser/plugin.yaml", "export_torchscript.py", "export_onnx.py"} <= files
    assert {"export_monai.py", "my-monai-seg/plugin.yaml"} <= files and "--segment my-monai-seg" in "\n".join(
        body for kind, _, body in blocks if kind == "bash"
    )
    commands = "\n".join(body for kind, _, body in blocks if kind == "bash")
    assert "--show-input" in commands and commands.count("plugins check") >= 3


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_every_command_of_the_guide_works(tmp_path, monkeypatch, capsys):
    _researchers_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    checks = []
    for kind, name, body in guide_blocks():
        if name:  # a file the guide asks the reader to write
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_text(body)
            continue
        assert kind == "bash", f"unexpected block {kind}"
        for line in filter(None, (raw.strip() for raw in body.splitlines())):
            out = _run_line(line, tmp_path, capsys)
            if "plugins check" in line:
                checks.append(out)
    assert len(checks) == 5
    for out in checks:
        assert all(row.startswith("ok ") for row in out.splitlines()), out
    assert "generator contract: fake input (1, 1, 128, 128)" in checks[1]  # size_multiple 128
    assert "generator contract: fake input (1, 1, 128, 128)" in checks[2]  # the ONNX U-Net too
    assert (tmp_path / "seen.png").stat().st_size > 0
    assert (tmp_path / "synthetic-ct.nii.gz").stat().st_size > 0
    import json

    consistency = json.loads((tmp_path / "consistency.json").read_text())["consistency"]
    assert consistency["segmentations"]["original"]["plugin_name"] == "my-monai-seg"
    assert [label["name"] for label in consistency["labels"]] == ["grey matter", "white matter"]

    # The refusals the guide quotes are the ones the check gives.
    guide = GUIDE.read_text()
    _set(tmp_path / "my-mr2ct", lambda data: data["architecture"].update(ngf=32))
    assert main(["plugins", "check", "my-mr2ct"]) == 1
    quoted = re.search(r"`(FAIL  generator weights: [^`]+)`", guide)[1]
    assert quoted in capsys.readouterr().out.splitlines()
    _set(tmp_path / "my-denoiser", lambda data: data.pop("size_multiple"))
    assert main(["plugins", "check", "my-denoiser"]) == 1
    quoted = re.search(r"`(the network fails on 32 x 32 images[^`]+)`", guide)[1]
    assert f"FAIL  generator contract: {quoted}" in capsys.readouterr().out


def _set(folder: Path, change) -> None:
    data = yaml.safe_load((folder / "plugin.yaml").read_text())
    change(data)
    (folder / "plugin.yaml").write_text(yaml.safe_dump(data))
