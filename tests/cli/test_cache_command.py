"""``main.py cache [--clear]``: the decoded-series cache's place and size; --clear empties it."""

from __future__ import annotations

import main
from app.core.orientation_phantom import orientation_phantom
from app.io.decoded_cache import DecodedCache
from app.io.loader import load_volume
from app.io.nifti import save_nifti


def test_cache_command_lists_and_clears(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "cache"
    monkeypatch.setenv("SYNTHVIEW_CACHE_DIR", str(folder))
    path = save_nifti(orientation_phantom(size_ijk=(12, 10, 8)), tmp_path / "p.nii.gz")
    cache = DecodedCache(folder)
    assert cache.put(path, None, load_volume(path))

    assert main.main(["cache"]) == 0
    out = capsys.readouterr().out
    assert str(folder) in out and "1 entries" in out

    assert main.main(["cache", "--clear"]) == 0
    out = capsys.readouterr().out
    assert out.count("removed ") == 2 and "1 entries removed" in out  # the entry, then the total
    assert cache.entries() == [] and cache.get(path) is None


def test_cache_command_when_off(monkeypatch, capsys):
    monkeypatch.setenv("SYNTHVIEW_CACHE_DIR", "off")
    assert main.main(["cache", "--clear"]) == 0
    assert "off" in capsys.readouterr().out
