"""Guard against Qt bindings that leak references to None/True (PySide6 6.12.0 does, and
CPython 3.11 then aborts with "none_dealloc" after some minutes of scrolling)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

PROBE = textwrap.dedent(
    """
    import os, sys
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtCore import QStringListModel, Qt
    from PySide6.QtWidgets import QApplication, QPushButton
    app = QApplication([])
    model = QStringListModel(["a"])
    index = model.index(0, 0)
    button = QPushButton()
    none0, true0 = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(20000):
        index.data(Qt.ItemDataRole.DecorationRole)  # returns None
        button.setEnabled(True)
    print(sys.getrefcount(None) - none0, sys.getrefcount(True) - true0)
    """
)


def test_qt_bindings_keep_none_and_true_alive():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    none_delta, true_delta = map(int, out.stdout.split())
    assert abs(none_delta) < 100 and abs(true_delta) < 100, (none_delta, true_delta)
