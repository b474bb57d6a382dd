"""optgui launcher: ``python main.py`` opens the window; sub-commands run headless.

    python main.py                      # the GUI
    python main.py lesson.optgui        # the GUI with a lesson file open
    python main.py export --help        # trajectories to CSV / PNG / Markdown / LaTeX
    python main.py train --help         # the vanishing-gradient lab on the command line
"""

import sys

from optgui.cli import main

if __name__ == "__main__":
    sys.exit(main())
