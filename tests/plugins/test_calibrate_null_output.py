"""calibrate_null follows the output policy: an existing calibration.json is replaced only with --force."""

import json
from types import SimpleNamespace

from app.plugins.training import calibrate_null


class _Calibration:
    def to_dict(self) -> dict:
        return {"new": True}

    def threshold_for(self, regions: float, litres: float) -> float:
        return 4.0


def _plugin_folder(tmp_path, monkeypatch, calibrations: list[str]):
    monkeypatch.setattr(calibrate_null, "calibrate", lambda name, seeds: calibrations.append(name) or _Calibration())
    import app.plugins.discovery as discovery

    monkeypatch.setattr(discovery, "find_plugin", lambda name: SimpleNamespace(folder=str(tmp_path)))
    return tmp_path / calibrate_null.CALIBRATION_FILE


def test_an_existing_calibration_is_refused_without_force_and_replaced_with_it(tmp_path, monkeypatch, capsys):
    calibrations: list[str] = []
    path = _plugin_folder(tmp_path, monkeypatch, calibrations)
    path.write_text('{"old": true}\n')

    assert calibrate_null.main(["--plugins", "mr-t1-denoise"]) == 2
    assert json.loads(path.read_text()) == {"old": True}
    assert calibrations == []  # refused before the long work
    assert "--force" in capsys.readouterr().err

    assert calibrate_null.main(["--plugins", "mr-t1-denoise", "--force"]) == 0
    assert json.loads(path.read_text()) == {"new": True}
    assert calibrations == ["mr-t1-denoise"]


def test_a_new_calibration_needs_no_force(tmp_path, monkeypatch):
    calibrations: list[str] = []
    path = _plugin_folder(tmp_path, monkeypatch, calibrations)
    assert calibrate_null.main(["--plugins", "mr-t1-denoise"]) == 0
    assert json.loads(path.read_text()) == {"new": True}
