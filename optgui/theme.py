"""Look and feel: Fusion with a dark palette (plots are dark too), a small style sheet and
the app's SVG icons from ``resources/``."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QColor, QIcon, QPalette
from PySide6.QtWidgets import QApplication

RESOURCES = Path(__file__).resolve().parent.parent / "resources"


def icon(name: str) -> QIcon:
    """The icon ``resources/icons/<name>.svg`` (an empty icon if it is missing)."""
    path = RESOURCES / "icons" / f"{name}.svg"
    return QIcon(str(path)) if path.exists() else QIcon()


def dark_palette() -> QPalette:
    p = QPalette()
    role, group = QPalette.ColorRole, QPalette.ColorGroup
    colors = {
        role.Window: "#25252f",
        role.WindowText: "#e4e4ee",
        role.Base: "#1b1b23",
        role.AlternateBase: "#2a2a35",
        role.ToolTipBase: "#30303c",
        role.ToolTipText: "#f0f0f5",
        role.PlaceholderText: "#80808f",
        role.Text: "#e8e8f0",
        role.Button: "#30303c",
        role.ButtonText: "#e8e8f0",
        role.BrightText: "#ff6b6b",
        role.Link: "#7fb2ff",
        role.Highlight: "#5a5ad0",
        role.HighlightedText: "#ffffff",
        role.Light: "#45455a",
        role.Midlight: "#3a3a4a",
        role.Mid: "#2c2c38",
        role.Dark: "#15151c",
        role.Shadow: "#000000",
    }
    for r, c in colors.items():
        p.setColor(r, QColor(c))
    for r in (role.WindowText, role.Text, role.ButtonText):
        p.setColor(group.Disabled, r, QColor("#6e6e7e"))
    return p


def apply_theme(app: QApplication) -> None:
    app.setStyle("Fusion")
    app.setPalette(dark_palette())
    qss = RESOURCES / "style.qss"
    if qss.exists():
        app.setStyleSheet(qss.read_text(encoding="utf-8"))
    app.setWindowIcon(icon("optgui"))
