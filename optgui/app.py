"""GUI entry point: ``main()`` creates the QApplication, builds the window, runs the loop.

Nothing on this path imports torch (a test checks ``sys.modules``): the training lab loads it
lazily when it is opened, so the window appears fast.
"""

from __future__ import annotations

import os
import sys


def create_application(argv: list[str] | None = None):
    """The running QApplication, created (with name, organisation and theme) if needed."""
    from PySide6.QtWidgets import QApplication

    from optgui.theme import apply_theme

    app = QApplication.instance()
    if app is None:
        app = QApplication([sys.argv[0] if sys.argv else "optgui", *(argv or [])])
        app.setApplicationName("optgui")
        app.setOrganizationName("optgui")
        app.setApplicationDisplayName("optgui")
        apply_theme(app)
    return app


def display_problem() -> str | None:
    """Why the window cannot open here, or None: Qt itself would abort with a core dump."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return None
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    return ("optgui needs a display to open its window, and neither DISPLAY nor "
            "WAYLAND_DISPLAY is set. Run it from a desktop session, or use the command line "
            "(python main.py export --help, python main.py train --help).")


def main(argv: list[str] | None = None) -> int:
    """Open the window; returns the exit code of the Qt event loop."""
    problem = display_problem()
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    app = create_application(list(argv or []))
    from optgui.mainwindow import MainWindow

    window = MainWindow()
    window.show()
    return int(app.exec())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
