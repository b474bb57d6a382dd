"""Undo for the playground: the document's state and the QUndoCommand that replays an edit.

The state is :class:`Setup` (the run configuration plus the lesson's title and notes), held
by the controller's :class:`engine.document.Document`. Every recorded edit becomes one
:class:`EditCommand` on the controller's ``QUndoStack``; undo and redo hand the edit back to
the controller, which re-applies the state before or after it.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QUndoCommand

from engine.document import Edit
from optgui.playground.config import RunConfig


@dataclass(frozen=True)
class Setup:
    """What an undo step restores: the runs and surface, and the lesson's title and notes."""

    config: RunConfig
    title: str = ""
    notes: str = ""


class EditCommand(QUndoCommand):
    """One edit on the undo stack; edits with the same key in quick succession merge."""

    MERGE_ID = 0x6F70  # one id for every mergeable edit; Edit.merged decides by key and time

    def __init__(self, ctrl, edit: Edit) -> None:
        super().__init__(edit.label)
        self.ctrl = ctrl
        self.edit = edit
        self._pushed = True  # QUndoStack.push calls redo(), but the edit is already applied

    def id(self) -> int:
        return self.MERGE_ID if self.edit.key is not None else -1

    def mergeWith(self, other: QUndoCommand) -> bool:  # noqa: N802 (Qt API)
        merged = self.edit.merged(getattr(other, "edit", None)) if isinstance(
            other, EditCommand) else None
        if merged is None:
            return False
        self.edit = merged
        if merged.before == merged.after:  # back where it started: nothing to undo
            self.setObsolete(True)
        return True

    def redo(self) -> None:
        if self._pushed:
            self._pushed = False
            return
        self.ctrl.apply_edit(self.edit, undo=False)

    def undo(self) -> None:
        self.ctrl.apply_edit(self.edit, undo=True)
