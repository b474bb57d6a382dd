"""The open document: the setup as one immutable value that every edit replaces (no Qt).

The window's controller holds a :class:`Document`. Each setup edit (surface, start, steps,
runs, hyperparameters, a preset or a lesson loaded) calls :meth:`Document.change` with the
new value and a label; the document records an :class:`Edit` (the value before and after)
and hands it to its listeners, in the window a ``QUndoStack`` whose commands call
:meth:`Document.undo` / :meth:`Document.redo` and re-apply the value. Because the state is a
value, "is it modified?" is just a comparison with the state last saved::

    >>> doc = Document(1)
    >>> edits = []
    >>> doc.subscribe(edits.append)
    >>> doc.change(2, "two").label, doc.modified
    ('two', True)
    >>> doc.undo(edits[0]); doc.state, doc.modified
    (1, False)

Edits with the same ``key`` in quick succession (arrow clicks on one spin box, the
keystrokes of one spec string) are one gesture: :meth:`Edit.merged` joins them, so one
undo step covers one committed edit, not every keystroke.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

MERGE_SECONDS = 1.0  # edits of one key closer together than this are one undo step


@dataclass(frozen=True)
class Edit:
    """One recorded change: ``before`` → ``after`` (whole document states).

    ``file_before`` / ``file_after`` are (path, saved state) pairs when the edit also
    switched files (New, Open: undoing them goes back to the previous file as it was).
    """

    label: str
    before: Any
    after: Any
    key: Hashable | None = None
    time: float = 0.0
    file_before: tuple[Path | None, Any] | None = None
    file_after: tuple[Path | None, Any] | None = None

    def merged(self, later: Edit) -> Edit | None:
        """This edit followed by ``later`` as one edit, or None if they are separate."""
        if (self.key is None or later.key != self.key or self.file_after is not None
                or later.file_after is not None or later.before != self.after
                or later.time - self.time > MERGE_SECONDS):
            return None
        return replace(self, after=later.after, time=later.time)


class Document:
    """The current state, the file it belongs to, and the state last saved there."""

    def __init__(self, state: Any, path: str | Path | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._state = state
        self._saved = state
        self._path = Path(path) if path else None
        self._clock = clock
        self._listeners: list[Callable[[Edit], None]] = []

    @property
    def state(self) -> Any:
        return self._state

    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def saved_state(self) -> Any:
        """The state the file holds (as last saved or opened)."""
        return self._saved

    @property
    def modified(self) -> bool:
        return self._state != self._saved

    def subscribe(self, listener: Callable[[Edit], None]) -> None:
        """Call ``listener(edit)`` after every recorded change."""
        self._listeners.append(listener)

    def change(self, state: Any, label: str, key: Hashable | None = None, *,
               path: str | Path | None | bool = False) -> Edit | None:
        """Make ``state`` current and record the edit (None if nothing changed).

        ``path`` (a path, or None for an untitled document) also switches the file, as New
        and Open do: the new state counts as saved there.
        """
        switch = path is not False
        if state == self._state and not switch:
            return None
        new_path = (Path(path) if path else None) if switch else self._path
        edit = Edit(label, self._state, state, key, self._clock(),
                    (self._path, self._saved) if switch else None,
                    (new_path, state) if switch else None)
        self._apply(edit.after, edit.file_after)
        for listener in self._listeners:
            listener(edit)
        return edit

    def undo(self, edit: Edit) -> None:
        self._apply(edit.before, edit.file_before)

    def redo(self, edit: Edit) -> None:
        self._apply(edit.after, edit.file_after)

    def _apply(self, state: Any, file: tuple | None) -> None:
        self._state = state
        if file is not None:
            self._path, self._saved = file

    def reset(self, state: Any, path: str | Path | None = None) -> None:
        """Start over with ``state`` as the saved content of ``path`` (no edit recorded)."""
        self._state = self._saved = state
        self._path = Path(path) if path else None

    def mark_saved(self, path: str | Path | None = None) -> None:
        """The current state is now what the file (``path``, default: the current one) holds."""
        if path is not None:
            self._path = Path(path)
        self._saved = self._state
