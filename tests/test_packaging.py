"""A built wheel carries the bundled encoder, so a pip install needs no source tree."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_carries_encoder(tmp_path):
    pytest.importorskip("hatchling")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )
    wheel = next(tmp_path.glob("photosim-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        card = json.loads(zf.read("photosim/resources/encoder/card.json"))
        weights = card["weights"]
        assert f"photosim/resources/encoder/{weights}" in names
        assert zf.getinfo(f"photosim/resources/encoder/{weights}").file_size > 1_000_000
        assert "photosim/resources/desktop/photosim.desktop" in names  # photosim install-desktop
        assert "photosim/library.py" in names and "photosim/gui/__init__.py" in names
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        text = zf.read(entry_points).decode()
        assert "photosim = photosim.cli:main" in text and "photosim-gui = photosim.gui.app:main" in text
    # installed without a source tree, the package finds its encoder inside itself
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "import photosim.encoder as e; print(e.bundled_model_dir())"
    )
    out = subprocess.run([sys.executable, "-c", probe, str(site)], capture_output=True, text=True,
                         cwd=tmp_path, check=True).stdout.strip()
    assert out == str(site / "photosim" / "resources" / "encoder")
