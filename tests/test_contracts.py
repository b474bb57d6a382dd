"""Architecture contracts: the engine never pulls in Qt; nothing eval()s user text."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imported_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint('\\n'.join(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.split())


def test_engine_imports_without_qt():
    mods = imported_after(
        "import engine, engine.functions, engine.optimizers, engine.trajectory, engine.export, "
        "engine.presets, engine.spec")
    assert not {m for m in mods if m.split(".")[0] in {"PySide6", "pyqtgraph", "shiboken6"}}
    assert "torch" not in mods


def test_no_engine_module_imports_qt_anywhere():
    for path in (ROOT / "engine").rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in {"PySide6", "pyqtgraph", "optgui"}, (
                    f"{path.name} imports {name}")


def test_the_cli_export_path_does_not_import_qt_or_torch():
    mods = imported_after(
        "from optgui.cli import main\n"
        "import contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['export', '--preset', 'course'])")
    assert "torch" not in mods
    assert "PySide6" not in mods


def test_nothing_calls_eval_or_exec():
    for folder in ("engine", "optgui"):
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                    assert node.func.id not in {"eval", "exec"}, f"{path}: {node.func.id}()"
