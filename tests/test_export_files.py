"""Exported files: atomic, never destructive, honest about errors (issue 8 §6).

A full disk, a read-only folder and a kill are simulated by fault injection (replacing
``os.write`` / ``os.open`` in the writer, sending SIGTERM), since the tests cannot fill a
real disk or drop root's rights.
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import engine.export as X
from optgui.cli import main

ROOT = Path(__file__).resolve().parent.parent
GD = ["--optimizer", "gd(lr=0.1)", "--steps", "3"]


def parts(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def fail_writes_after(monkeypatch, n_ok: int, err=errno.ENOSPC):
    """The writer's os.write succeeds ``n_ok`` times, then fails like a full disk."""
    real = os.write
    calls = {"n": 0}

    def write(fd, data):
        calls["n"] += 1
        if calls["n"] > n_ok:
            raise OSError(err, os.strerror(err))
        return real(fd, data)

    monkeypatch.setattr(X.os, "write", write)
    return calls


# ----------------------------------------------------------------------------- errors


def test_full_disk_message_names_the_users_file_and_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "good.csv"
    target.write_text("old contents")
    fail_writes_after(monkeypatch, 0)
    with pytest.raises(OSError) as info:
        X.atomic_write(target, "new contents")
    assert str(info.value) == f"cannot write {target}: No space left on device"
    assert info.value.errno == errno.ENOSPC
    assert ".part" not in str(info.value)
    assert target.read_text() == "old contents" and parts(tmp_path) == []


def test_read_only_folder_message_names_the_users_file(tmp_path, monkeypatch):
    real_open = os.open

    def deny(path, flags, mode=0o777, **kw):
        if flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, flags, mode, **kw)

    monkeypatch.setattr(X.os, "open", deny)
    with pytest.raises(OSError) as info:
        X.atomic_write(tmp_path / "out.csv", "x")
    assert str(info.value) == f"cannot write {tmp_path / 'out.csv'}: Permission denied"


def test_several_files_are_written_all_or_nothing(tmp_path, monkeypatch):
    a, b = tmp_path / "a.csv", tmp_path / "b.md"
    b.write_text("old b")
    fail_writes_after(monkeypatch, 1)  # the first file's temporary is complete, not the 2nd
    with pytest.raises(OSError, match=f"cannot write {b}: No space left"):
        X.atomic_write_many([(a, "aaa"), (b, "bbb")])
    assert not a.exists() and b.read_text() == "old b" and parts(tmp_path) == []
    monkeypatch.undo()
    X.atomic_write_many([(a, "aaa"), (b, "bbb")])
    assert a.read_text() == "aaa" and b.read_text() == "bbb"


def test_export_on_a_full_disk_writes_no_file_and_exits_2(tmp_path, monkeypatch, capsys):
    csv, md = tmp_path / "t.csv", tmp_path / "t.md"
    fail_writes_after(monkeypatch, 1)
    assert main(["export", *GD, "--csv", str(csv), "--md", str(md)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(md) in err and "No space left on device" in err
    assert list(tmp_path.iterdir()) == []


def test_train_on_a_full_disk_writes_neither_output(toy_dir, tmp_path, monkeypatch, capsys):
    import engine.export

    csv, png = tmp_path / "m.csv", tmp_path / "c.png"
    args = ["train", "--data-dir", str(toy_dir), "--epochs", "1", "--layers", "1",
            "--width", "4", "--optimizer", "sgd", "--threads", "1", "--csv", str(csv)]
    monkeypatch.setattr("optgui.lab.plots.curves_png", lambda history, size=None: b"\x89PNG")
    fail_writes_after(monkeypatch, 1)
    assert main([*args, "--png", str(png)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "No space left on device" in err[-1] and str(png) in err[-1]
    assert "no file was written" in err[-1]
    assert list(tmp_path.iterdir()) == []
    assert engine.export._active == set()


@pytest.mark.parametrize("path,words", [
    ("", "needs a file name"),
    ("   ", "needs a file name"),
    ("~nosuchuser9/a.csv", "no user 'nosuchuser9'"),
    ("{tmp}/missing/a.csv", "does not exist"),
    ("{tmp}", "folder"),
    ("{tmp}/a.csv/", "folder"),
])
def test_bad_output_paths_are_one_line_exit_2(tmp_path, monkeypatch, capsys, path, words):
    monkeypatch.chdir(tmp_path)
    path = path.format(tmp=tmp_path)
    assert main(["export", *GD, "--csv", path]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_train_refuses_bad_paths_and_missing_cuda_in_one_line(tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "main.py", "train", *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)

    for args, words in ((["--csv", ""], "needs a file name"),
                        (["--csv", "~nosuchuser9/m.csv"], "no user"),
                        (["--csv", str(tmp_path / "x"), "--png", str(tmp_path / "x")],
                         "same file")):
        proc = run(*args)
        assert proc.returncode == 2 and words in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    proc = run("--device", "cuda", "--data-dir", str(tmp_path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "CUDA" in proc.stderr or "Fashion-MNIST" in proc.stderr  # CUDA present: data next


# ----------------------------------------------------------------------------- never destructive


def null_device(tmp_path) -> Path:
    """A character device to write to. Never the system's /dev/null when running as root:
    a writer with the bug under test would replace it (root may write to /dev)."""
    if os.geteuid() != 0:
        return Path("/dev/null")  # /dev is not writable: a buggy writer fails, harmlessly
    dev = tmp_path / "null"
    try:
        os.mknod(dev, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except OSError as exc:
        pytest.skip(f"cannot create a device node here ({exc.strerror})")
    return dev


def test_a_character_device_is_written_to_not_replaced(tmp_path):
    dev = null_device(tmp_path)
    before = os.stat(dev)
    X.atomic_write(dev, "discarded\n")
    after = os.stat(dev)
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev
    assert after.st_ino == before.st_ino
    assert not [p for p in os.listdir(dev.parent) if p.startswith(".null.")]


def test_a_fifo_receives_the_data_and_stays_a_fifo(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    X.atomic_write(fifo, "through the pipe")
    reader.join(10)
    assert got == [b"through the pipe"] and stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_block_devices_are_refused():
    dev = next((Path("/dev", n) for n in sorted(os.listdir("/dev"))
                if stat.S_ISBLK(os.lstat(Path("/dev", n)).st_mode)), None)
    if dev is None:
        pytest.skip("no block device in /dev")
    with pytest.raises(OSError, match="block device"):
        X.resolve_target(dev)


def test_writes_go_through_symlinks(tmp_path):
    real = tmp_path / "data" / "real.csv"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    X.atomic_write(link, "new")
    assert link.is_symlink() and real.read_text() == "new"
    assert parts(tmp_path) == [] and parts(real.parent) == []
    dangling = tmp_path / "dangling.csv"
    dangling.symlink_to(tmp_path / "data" / "created.csv")
    X.atomic_write(dangling, "made")
    assert dangling.is_symlink() and (tmp_path / "data" / "created.csv").read_text() == "made"
    loop = tmp_path / "loop.csv"
    loop.symlink_to(loop)
    with pytest.raises(OSError, match="symbolic links"):
        X.atomic_write(loop, "x")


def test_two_outputs_on_one_file_are_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    (tmp_path / "kept.md").write_text("keep me")
    os.link(tmp_path / "kept.md", tmp_path / "hard.md")
    (tmp_path / "alias.csv").symlink_to(tmp_path / "a.csv")
    for first, second in (("a.csv", "a.csv"), ("a.csv", "sub/../a.csv"),
                          ("alias.csv", str(tmp_path / "a.csv")), ("kept.md", "hard.md")):
        assert main(["export", *GD, "--csv", first, "--md", second]) == 2
        err = capsys.readouterr().err
        assert "--csv and --md name the same file" in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alias.csv", "hard.md", "kept.md",
                                                          "sub"]
    assert (tmp_path / "kept.md").read_text() == "keep me"


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        X.atomic_write(tmp_path / "new.csv", "x")
        X.atomic_write_many([(tmp_path / "a", "1"), (tmp_path / "b", b"2")])
    finally:
        os.umask(old)
    for name in ("new.csv", "a", "b"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == mode


def test_an_existing_file_keeps_its_permissions(tmp_path):
    target = tmp_path / "shared.csv"
    target.write_text("old")
    target.chmod(0o640)
    X.atomic_write(target, "new")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640 and target.read_text() == "new"


# ----------------------------------------------------------------------------- .part files


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_parts_of_a_killed_writer_are_removed_on_the_next_write(tmp_path):
    target = tmp_path / "out.csv"
    stale = tmp_path / f".out.csv.optgui-{dead_pid()}-0badc0de.part"
    live = tmp_path / f".out.csv.optgui-{os.getppid()}-0000beef.part"  # our parent lives
    other = tmp_path / f".other.csv.optgui-{dead_pid()}-12345678.part"
    legacy_old = tmp_path / ".out.csv.hpda0hmp.part"  # mkstemp's naming, an hour old
    legacy_new = tmp_path / ".out.csv.abcd_123.part"
    mine = tmp_path / "out.csv.part"  # not our naming: the user's own file
    for p in (stale, live, other, legacy_old, legacy_new, mine):
        p.write_bytes(b"x" * 1000)
    old = time.time() - 2 * 3600
    os.utime(legacy_old, (old, old))
    X.atomic_write(target, "fresh")
    assert not stale.exists() and not legacy_old.exists()
    assert live.exists() and other.exists() and legacy_new.exists() and mine.exists()
    assert target.read_text() == "fresh"


def test_sigterm_during_an_export_removes_the_temporary(tmp_path):
    """A real SIGTERM arrives while the CSV's temporary is half written."""
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(ROOT)!r})
        import engine.export as X
        real = X._write_all
        def write_then_die(fd, data):
            real(fd, data[: len(data) // 2])
            os.kill(os.getpid(), signal.SIGTERM)
            real(fd, data[len(data) // 2:])
        X._write_all = write_then_die
        from optgui.cli import main
        sys.exit(main(["export", "--optimizer", "gd(lr=0.1)", "--steps", "2000",
                       "--csv", {str(tmp_path / "big.csv")!r}]))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode == 143, proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_pictures_and_animations_join_the_all_or_nothing_set(tmp_path, monkeypatch, capsys):
    from optgui.playground import render

    csv, png, gif = tmp_path / "t.csv", tmp_path / "t.png", tmp_path / "t.gif"
    args = ["export", *GD, "--csv", str(csv), "--png", str(png), "--gif", str(gif),
            "--size", "320x200"]
    real = render.save_animation

    def disk_full_mid_animation(scene, kind, path, *a, **k):
        with X.atomic_path(path) as tmp:  # as the real writers do
            tmp.write_bytes(b"GIF89a half")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(render, "save_animation", disk_full_mid_animation)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"cannot write {gif}: No space left on device; no file was written" in err
    assert ".part" not in err and list(tmp_path.iterdir()) == []
    monkeypatch.setattr(render, "save_animation", real)
    old = os.umask(0o022)
    try:
        assert main(args) == 0
    finally:
        os.umask(old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.gif", "t.png"]
    assert gif.read_bytes()[:6] == b"GIF89a" and png.read_bytes()[:4] == b"\x89PNG"
    assert {stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()} == {0o644}


def test_a_batch_discards_everything_on_an_exception(tmp_path):
    (tmp_path / "kept").write_text("old")
    with pytest.raises(ZeroDivisionError), X.AtomicBatch() as batch:
        batch.add(tmp_path / "kept", "new")
        with batch.path(tmp_path / "big.bin") as tmp:
            tmp.write_bytes(b"x" * 1000)
        raise ZeroDivisionError("a bug while rendering")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"]
    assert (tmp_path / "kept").read_text() == "old"
    with pytest.raises(OSError, match="name the same file"), X.AtomicBatch() as batch:
        batch.add(tmp_path / "a", "1")
        batch.add(tmp_path / "sub" / ".." / "a", "2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"]
