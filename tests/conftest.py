"""Shared test set-up: Qt runs offscreen, and no test may leave a QThread running."""

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OPTGUI_NO_SETTINGS", "1")  # tests never read or write the user's settings

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
