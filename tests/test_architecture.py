"""The layout's rules, checked: import contracts (pyproject.toml) and the front door's size."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    if not Path(exe).exists():
        pytest.fail("lint-imports is missing: install the test extras (pip install -e '.[test]')")
    out = subprocess.run([exe, "--config", str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout


def test_the_front_door_stays_small():
    assert len((ROOT / "photosim" / "library.py").read_text().splitlines()) <= 250


def test_nobody_outside_the_engine_touches_the_librarys_private_parts():
    """``lib._anything`` is the library's own business; benchmarks, the CLI, the GUI and the
    tests use its public API."""
    offenders = []
    for folder in ("photosim", "benchmarks", "tests", "packaging"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name == "library.py" and path.parent.name == "photosim":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                        and isinstance(node.value, ast.Name) and node.value.id in ("lib", "library", "self_lib")):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} lib.{node.attr}")
    assert offenders == []
