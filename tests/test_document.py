"""engine.document: the undoable document model (plain pytest, no Qt)."""

from __future__ import annotations

from pathlib import Path

from engine.document import MERGE_SECONDS, Document


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def recorded(doc: Document) -> list:
    edits: list = []
    doc.subscribe(edits.append)
    return edits


def test_change_records_an_edit_and_undo_redo_replay_it():
    doc = Document({"steps": 30})
    edits = recorded(doc)
    assert doc.change({"steps": 30}, "same") is None and edits == []  # no change, no edit
    edit = doc.change({"steps": 12}, "Steps")
    assert edits == [edit] and (edit.before, edit.after) == ({"steps": 30}, {"steps": 12})
    assert doc.modified
    doc.undo(edit)
    assert doc.state == {"steps": 30} and not doc.modified  # back at the saved state
    doc.redo(edit)
    assert doc.state == {"steps": 12} and doc.modified


def test_edits_of_one_key_in_quick_succession_merge():
    clock = Clock()
    doc = Document(0.4, clock=clock)
    edits = recorded(doc)
    doc.change(0.5, "lr", key=("spec", 1))
    clock.now += MERGE_SECONDS / 2
    doc.change(0.6, "lr", key=("spec", 1))
    merged = edits[0].merged(edits[1])
    assert (merged.before, merged.after) == (0.4, 0.6)
    clock.now += MERGE_SECONDS * 2  # a pause: a new gesture
    doc.change(0.7, "lr", key=("spec", 1))
    assert merged.merged(edits[2]) is None
    doc.change(0.8, "other", key=("spec", 2))  # another run's spec: separate
    assert edits[2].merged(edits[3]) is None
    assert edits[3].merged(doc.change(0.9, "no key")) is None  # unkeyed edits never merge


def test_switching_files_is_undone_with_the_file(tmp_path):
    doc = Document("draft", path=tmp_path / "a.optgui")
    doc.change("draft 2", "edit")
    assert doc.modified and doc.path == tmp_path / "a.optgui"
    opened = doc.change("lesson b", "Open b", path=tmp_path / "b.optgui")
    assert doc.path == tmp_path / "b.optgui" and not doc.modified  # just opened: saved
    doc.undo(opened)
    assert (doc.state, doc.path, doc.modified) == ("draft 2", tmp_path / "a.optgui", True)
    doc.redo(opened)
    assert (doc.state, doc.path, doc.modified) == ("lesson b", tmp_path / "b.optgui", False)
    new = doc.change("lesson b", "New", path=None)  # same content, but a new untitled file
    assert new is not None and doc.path is None
    assert opened.merged(new) is None


def test_mark_saved_clears_the_modified_state():
    doc = Document(1)
    doc.change(2, "two")
    doc.mark_saved("x.optgui")
    assert not doc.modified and doc.path == Path("x.optgui") and doc.saved_state == 2
    doc.change(3, "three")
    assert doc.modified


def test_reset_starts_over_without_an_edit(tmp_path):
    doc = Document(1)
    edits = recorded(doc)
    doc.change(2, "two")
    doc.reset(5, tmp_path / "x.optgui")
    assert (doc.state, doc.saved_state, doc.path, doc.modified) == (
        5, 5, tmp_path / "x.optgui", False)
    assert len(edits) == 1
