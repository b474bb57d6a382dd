"""GUI entry point: ``main()`` creates the QApplication, builds the window, runs the loop.

Nothing on this path imports torch (a test checks ``sys.modules``): the training lab loads it
lazily when it is opened, so the window appears fast.
"""

from __future__ import annotations

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


def main(argv: list[str] | None = None) -> int:
    """Open the window; returns the exit code of the Qt event loop."""
    app = create_application(list(argv or []))
    from optgui.mainwindow import MainWindow

    window = MainWindow()
    window.show()
    return int(app.exec())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
