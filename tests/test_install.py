"""Install: when Qt's X11 plugin cannot load, the app names the Debian/Ubuntu packages it
needs (instead of Qt's abort), and the README lists the same packages."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11 is Linux's")


def test_a_missing_xcb_library_is_named_with_its_package(tmp_path):
    # a broken libxcb-cursor.so.0 found first by the loader, as if the real one were missing
    (tmp_path / "libxcb-cursor.so.0").write_bytes(b"not a library")
    env = {k: v for k, v in os.environ.items()
           if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    env.update(DISPLAY=":99", LD_LIBRARY_PATH=str(tmp_path), PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, str(ROOT / "main.py")], capture_output=True,
                          text=True, timeout=60, env=env)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "libxcb-cursor.so.0" in lines[0]
    assert "package libxcb-cursor0" in lines[0]
    assert "apt-get install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1" in lines[0]


def test_a_loadable_plugin_is_no_problem_and_a_broken_one_is(tmp_path, monkeypatch):
    import _ctypes

    from optgui.app import display_problem

    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("DISPLAY", ":99")
    assert display_problem(Path(_ctypes.__file__)) is None  # any library that loads
    broken = tmp_path / "libqxcb.so"
    broken.write_bytes(b"\x7fELF but not really")
    message = display_problem(broken)
    assert message is not None and "libqxcb.so" in message
    assert "libxcb-icccm4" in message and "libxcb-keysyms1" in message


def test_the_readme_names_every_package_the_message_names():
    from optgui.app import XCB_PACKAGES

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = re.search(r"sudo apt-get install ([^`]+?)\n```", readme, re.S)
    assert command, "the README shows the apt-get command for Qt's libraries"
    named = set(command.group(1).replace("\\", " ").split())
    assert named == set(XCB_PACKAGES.values())
