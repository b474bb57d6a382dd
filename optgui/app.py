"""GUI entry point: ``main()`` creates the QApplication, builds the window, runs the loop.

Nothing on this path imports torch (a test checks ``sys.modules``): the training lab loads it
lazily when it is opened, so the window appears fast.
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

# What Qt's X11 platform plugin links against (`ldd` on PySide6's plugins/platforms/
# libqxcb.so and lib/libQt6XcbQpa.so.6), as Debian/Ubuntu packages. Desktops often lack the
# first few (the xcb utility libraries); without them Qt aborts with "Could not load the Qt
# platform plugin xcb".
XCB_PACKAGES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb.so.1": "libxcb1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libfontconfig.so.1": "libfontconfig1",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
}


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


def display_problem(xcb_plugin: Path | None = None) -> str | None:
    """Why the window cannot open here, or None: Qt itself would abort with a core dump.

    On X11 (DISPLAY set, no Wayland) this loads Qt's xcb plugin (``xcb_plugin``, by default
    PySide6's) the way Qt will, to name the system libraries it lacks.
    """
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return None
    if os.environ.get("WAYLAND_DISPLAY"):
        return None
    if os.environ.get("DISPLAY"):
        return xcb_problem(xcb_plugin)
    return ("optgui needs a display to open its window, and neither DISPLAY nor "
            "WAYLAND_DISPLAY is set. Run it from a desktop session, or use the command line "
            "(python main.py export --help, python main.py train --help).")


def xcb_problem(plugin: Path | None = None) -> str | None:
    """Why Qt's X11 platform plugin cannot load (a system library missing), or None."""
    import ctypes

    if plugin is None:
        from PySide6.QtCore import QLibraryInfo

        folder = QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)
        plugin = Path(folder) / "platforms" / "libqxcb.so"
    if not Path(plugin).is_file():
        return None  # not a PySide6 we know: let Qt speak for itself
    try:
        ctypes.CDLL(str(plugin))  # what Qt does next; the loader names what is missing
    except OSError as exc:
        reason = str(exc)
        missing = Path(reason.split(":", 1)[0].strip()).name
        first = XCB_PACKAGES.get(missing)
        packages = " ".join(dict.fromkeys([first, *XCB_PACKAGES.values()] if first
                                          else XCB_PACKAGES.values()))
        return (f"Qt's X11 platform plugin (xcb) cannot load: {reason}. "
                + (f"{missing} comes with the package {first}. " if first else "")
                + "On Debian or Ubuntu, install the libraries Qt needs: "
                f"sudo apt-get install {packages}")
    return None


_collector = None


def collect_in_gui_thread() -> None:
    """From now on, collect garbage only in the GUI thread, on a timer.

    Python collects cycles in whichever thread happens to allocate. A collection in the
    trajectory worker can free a wrapper of a Qt widget left over from a closed window. The
    worker then destroys that widget while the GUI thread deletes another one, and the two
    threads deadlock on Qt's and the GIL's locks. This happened in a test run
    (test_without_a_child_process_large_requests_are_computed_in_the_thread): the worker
    was in gc_collect_main → QObject::~QObject, the GUI thread in QBasicMutex::lockInternal.
    pyqtgraph's GarbageCollector turns automatic collection off and collects, by the same
    thresholds, from a 1 s timer in the thread that creates it. Call this from the GUI
    thread; calling it again does nothing."""
    global _collector
    if _collector is None:
        from pyqtgraph.util.garbage_collector import GarbageCollector

        _collector = GarbageCollector(interval=1.0)


def freeze_startup_objects() -> None:
    """Move the objects made while starting (modules, Qt wrappers, the widgets: ~100,000)
    out of the garbage collector's sight. A full collection otherwise walks all of them, a
    12-40 ms pause of the window at unpredictable moments; they live as long as the app."""
    gc.collect()
    gc.freeze()


def main(argv: list[str] | None = None) -> int:
    """Open the window (and the lesson file among ``argv``, if any); returns the exit code
    of the Qt event loop."""
    problem = display_problem()
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    argv = list(argv or [])
    lessons = [a for a in argv if a.lower().endswith(".optgui")]  # python main.py L.optgui
    app = create_application([a for a in argv if a not in lessons])
    from optgui.mainwindow import MainWindow

    window = MainWindow()
    window.show()
    freeze_startup_objects()
    if lessons:
        window.lessons.open_path(lessons[0])  # a bad file: a dialog, the window stays
    return int(app.exec())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
