"""Fashion-MNIST location, validation, loading and download, on tiny IDX files written here.

The IDX bytes are written by hand with ``struct`` (not by engine code), so a bug shared by a
writer and the reader cannot hide.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import struct
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest

from engine import data as D
from engine.data import DataError

NAMES = D.FILES


def idx_images(images: np.ndarray, magic: int = 2051) -> bytes:
    n, rows, cols = images.shape
    return struct.pack(">IIII", magic, n, rows, cols) + images.astype(np.uint8).tobytes()


def idx_labels(labels: np.ndarray, magic: int = 2049) -> bytes:
    return struct.pack(">II", magic, len(labels)) + np.asarray(labels, np.uint8).tobytes()


def make_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A learnable toy set: class k lights up a k-dependent band of rows, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
    for i, k in enumerate(labels):
        images[i, 2 * k + 4: 2 * k + 7, 4:24] = 200 + rng.integers(0, 50)
    return images, labels


def write_dataset(folder: Path, n_train: int = 256, n_test: int = 64, *,
                  compress: bool = False, seed: int = 0) -> dict[str, np.ndarray]:
    """Write the four IDX files of a toy data set; return the arrays written."""
    folder.mkdir(parents=True, exist_ok=True)
    tr_x, tr_y = make_split(n_train, seed)
    te_x, te_y = make_split(n_test, seed + 1)
    blobs = {
        "train_images": idx_images(tr_x), "train_labels": idx_labels(tr_y),
        "test_images": idx_images(te_x), "test_labels": idx_labels(te_y),
    }
    for role, blob in blobs.items():
        if compress:
            (folder / f"{NAMES[role]}.gz").write_bytes(gzip.compress(blob))
        else:
            (folder / NAMES[role]).write_bytes(blob)
    return {"train_x": tr_x, "train_y": tr_y, "test_x": te_x, "test_y": te_y}


NO_DEFAULTS = {"system_dirs": (), "torchvision_roots": ()}


@pytest.fixture
def search(tmp_path, monkeypatch):
    """Search kwargs that never look at this machine's real folders."""
    app = tmp_path / "app"
    monkeypatch.setenv(D.DATA_DIR_ENV, str(app))
    return {"app_dir": app, **NO_DEFAULTS}


@pytest.mark.parametrize("compress", [False, True])
def test_loads_raw_and_gzip_files(tmp_path, search, compress):
    arrays = write_dataset(tmp_path / "d", compress=compress)
    ds = D.load_fashion_mnist(tmp_path / "d", **search)
    assert ds.location.source == "user folder"
    assert ds.n_train == 256 and ds.n_test == 64
    assert tuple(ds.train_x.shape) == (256, 784) and str(ds.train_x.dtype) == "torch.uint8"
    assert str(ds.train_y.dtype) == "torch.int64"
    np.testing.assert_array_equal(ds.train_x.numpy(), arrays["train_x"].reshape(256, 784))
    np.testing.assert_array_equal(ds.test_y.numpy(), arrays["test_y"])


def test_torchvision_layout_prefers_the_unpacked_file(tmp_path, search):
    raw = tmp_path / "root" / "FashionMNIST" / "raw"
    write_dataset(raw)
    write_dataset(raw, compress=True, seed=5)
    loc = D.find_dataset(tmp_path / "root", **search)
    assert loc.folder == raw
    assert all(p.suffix != ".gz" for p in loc.files.values())


def test_search_order_user_then_app_then_system_then_torchvision(tmp_path):
    dirs = {k: tmp_path / k for k in ("user", "app", "system", "tv")}
    write_dataset(dirs["app"] / "FashionMNIST" / "raw")
    write_dataset(dirs["system"])
    write_dataset(dirs["tv"] / "FashionMNIST" / "raw")
    write_dataset(dirs["user"])
    kw = {"app_dir": dirs["app"], "system_dirs": [dirs["system"]],
          "torchvision_roots": [dirs["tv"]]}
    assert D.find_dataset(dirs["user"], **kw).source == "user folder"
    assert D.find_dataset(None, **kw).source == "app data folder"
    kw["app_dir"] = tmp_path / "nothing"
    assert D.find_dataset(None, **kw).source == "Debian package"
    kw["system_dirs"] = []
    loc = D.find_dataset(None, **kw)
    assert loc.source == "torchvision root" and loc.folder == dirs["tv"] / "FashionMNIST" / "raw"


def test_default_search_includes_debian_and_app_dir(monkeypatch, tmp_path):
    monkeypatch.setenv(D.DATA_DIR_ENV, str(tmp_path / "appdata"))
    folders = [c.folder for c in D.candidate_folders(tmp_path / "mine")]
    assert folders[0] == tmp_path / "mine"
    assert tmp_path / "appdata" / "FashionMNIST" / "raw" in folders
    assert folders.index(tmp_path / "appdata") < folders.index(D.DEBIAN_DIR)
    assert folders[-1] == Path("data") / "FashionMNIST" / "raw"


def test_app_data_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv(D.DATA_DIR_ENV, raising=False)
    monkeypatch.setattr(D.sys, "platform", "linux")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert D.app_data_dir() == tmp_path / "xdg" / "optgui" / "data"
    monkeypatch.setenv(D.DATA_DIR_ENV, str(tmp_path / "over"))
    assert D.app_data_dir() == tmp_path / "over"


def _corrupt(folder: Path, role: str, blob: bytes, compress: bool = False) -> Path:
    path = folder / NAMES[role]
    path.unlink(missing_ok=True)
    if compress:
        path = folder / f"{NAMES[role]}.gz"
        path.write_bytes(gzip.compress(blob))
    else:
        path.write_bytes(blob)
    return path


def _error(folder, search) -> str:
    with pytest.raises(DataError) as info:
        D.load_fashion_mnist(folder, **search)
    return str(info.value)


@pytest.mark.parametrize("compress", [False, True])
def test_wrong_magic_names_the_file(tmp_path, search, compress):
    d = tmp_path / "d"
    arrays = write_dataset(d)
    path = _corrupt(d, "train_images", idx_images(arrays["train_x"], magic=2049), compress)
    msg = _error(d, search)
    assert str(path) in msg and "magic number 2049, expected 2051" in msg
    assert "dataset-fashion-mnist" in msg  # says what to do


def test_labels_file_with_images_magic(tmp_path, search):
    d = tmp_path / "d"
    arrays = write_dataset(d)
    path = _corrupt(d, "test_labels", idx_labels(arrays["test_y"], magic=2051))
    msg = _error(d, search)
    assert str(path) in msg and "not an IDX labels file" in msg


def test_truncated_raw_file(tmp_path, search):
    d = tmp_path / "d"
    arrays = write_dataset(d)
    blob = idx_images(arrays["test_x"])
    path = _corrupt(d, "test_images", blob[:-100])
    msg = _error(d, search)
    assert str(path) in msg and "truncated" in msg


def test_file_shorter_than_header(tmp_path, search):
    d = tmp_path / "d"
    write_dataset(d)
    path = _corrupt(d, "train_labels", b"\x00\x00\x08")
    msg = _error(d, search)
    assert str(path) in msg and "truncated" in msg


def test_truncated_gzip_file(tmp_path, search):
    d = tmp_path / "d"
    arrays = write_dataset(d)
    path = d / f"{NAMES['train_images']}.gz"
    (d / NAMES["train_images"]).unlink()
    path.write_bytes(gzip.compress(idx_images(arrays["train_x"]))[:-500])
    msg = _error(d, search)
    assert str(path) in msg and "truncated or corrupt gzip" in msg


def test_trailing_garbage(tmp_path, search):
    d = tmp_path / "d"
    arrays = write_dataset(d)
    path = _corrupt(d, "train_labels", idx_labels(arrays["train_y"]) + b"xx")
    msg = _error(d, search)
    assert str(path) in msg and "2 bytes more" in msg


def test_wrong_image_size(tmp_path, search):
    d = tmp_path / "d"
    write_dataset(d)
    path = _corrupt(d, "train_images", idx_images(np.zeros((256, 27, 28), np.uint8)))
    msg = _error(d, search)
    assert str(path) in msg and "27×28" in msg


def test_image_and_label_counts_must_match(tmp_path, search):
    d = tmp_path / "d"
    arrays = write_dataset(d)
    path = _corrupt(d, "train_labels", idx_labels(arrays["train_y"][:255]))
    msg = _error(d, search)
    assert "256 images" in msg and "255 labels" in msg and str(path) in msg


def test_labels_must_be_0_to_9(tmp_path, search):
    d = tmp_path / "d"
    arrays = write_dataset(d)
    labels = arrays["test_y"].copy()
    labels[7] = 10
    path = _corrupt(d, "test_labels", idx_labels(labels))
    msg = _error(d, search)
    assert str(path) in msg and "label 10 at index 7" in msg


def test_standard_locations_need_the_full_set(tmp_path):
    system = tmp_path / "system"
    write_dataset(system)
    with pytest.raises(DataError) as info:
        D.load_fashion_mnist(None, app_dir=tmp_path / "x", system_dirs=[system],
                             torchvision_roots=())
    msg = str(info.value)
    assert "256 images" in msg and "60000" in msg and NAMES["train_images"] in msg


def test_missing_file_in_partial_folder(tmp_path, search):
    d = tmp_path / "d"
    write_dataset(d)
    (d / NAMES["test_labels"]).unlink()
    with pytest.raises(DataError) as info:
        D.find_dataset(d, **search)
    msg = str(info.value)
    assert str(d) in msg and "missing t10k-labels-idx1-ubyte" in msg


def test_incomplete_user_folder_does_not_fall_back(tmp_path):
    user, system = tmp_path / "user", tmp_path / "system"
    write_dataset(system)
    write_dataset(user)
    (user / NAMES["train_labels"]).unlink()
    with pytest.raises(DataError, match="missing train-labels-idx1-ubyte"):
        D.find_dataset(user, app_dir=tmp_path / "app", system_dirs=[system],
                       torchvision_roots=())
    # an incomplete standard folder is skipped when a later one is complete
    loc = D.find_dataset(None, app_dir=user, system_dirs=[system], torchvision_roots=())
    assert loc.folder == system


def test_nothing_found_lists_the_folders(tmp_path, search):
    with pytest.raises(DataError) as info:
        D.find_dataset(None, **search)
    msg = str(info.value)
    assert "not found" in msg and str(search["app_dir"]) in msg and "--download" in msg


def test_user_folder_must_exist(tmp_path, search):
    with pytest.raises(DataError, match="does not exist"):
        D.find_dataset(tmp_path / "typo", **search)


def test_unreadable_path_is_a_data_error(tmp_path, search):
    d = tmp_path / "d"
    write_dataset(d)
    (d / NAMES["train_images"]).unlink()
    (d / NAMES["train_images"]).mkdir()  # a folder where a file should be
    (d / f"{NAMES['train_images']}.gz").write_bytes(b"")
    msg = _error(d, search)
    assert f"{NAMES['train_images']}.gz" in msg and "truncated" in msg


def test_load_is_cached_until_a_file_changes(tmp_path, search):
    d = tmp_path / "d"
    write_dataset(d)
    first = D.load_fashion_mnist(d, **search)
    assert D.load_fashion_mnist(d, **search) is first
    write_dataset(d, n_train=128)
    second = D.load_fashion_mnist(d, **search)
    assert second is not first and second.n_train == 128


# ----------------------------------------------------------------------------- download


class FakeResponse(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _served(tmp_path, compress=True):
    """Tiny gzip files as a fake mirror serves them, with sources carrying their md5s."""
    src = tmp_path / "served"
    write_dataset(src, compress=compress)
    files = {p.name: p.read_bytes() for p in src.iterdir()}
    resources = [(f"{NAMES[r]}.gz", hashlib.md5(files[f"{NAMES[r]}.gz"]).hexdigest())
                 for r in ("train_images", "train_labels", "test_images", "test_labels")]
    return files, resources


@pytest.fixture
def tiny_full_set(monkeypatch):
    # the toy files stand in for the real set in the app folder (a standard location)
    monkeypatch.setattr(D, "FULL_COUNTS", {"train": 256, "test": 64})


def test_torchvision_knows_the_same_files():
    mirrors, resources = D._torchvision_sources()
    assert mirrors and all(m.endswith("/") for m in mirrors)
    assert sorted(name for name, _ in resources) == sorted(f"{n}.gz" for n in NAMES.values())


def test_download_into_torchvision_layout_with_progress(tmp_path, monkeypatch, tiny_full_set):
    files, resources = _served(tmp_path)
    urls = []

    def fake_open(url, timeout):
        urls.append(url)
        if url.startswith("http://down/"):
            raise URLError("mirror down")
        return FakeResponse(files[url.rsplit("/", 1)[1]])

    monkeypatch.setattr(D, "_open_url", fake_open)
    monkeypatch.setattr(D, "DOWNLOAD_CHUNK", 1000)
    calls = []
    loc = D.download_fashion_mnist(
        tmp_path / "app", lambda done, total, name: calls.append((done, total, name)),
        sources=(["http://down/", "http://up/"], resources))
    raw = tmp_path / "app" / "FashionMNIST" / "raw"
    assert loc.folder == raw and loc.source == "app data folder"
    assert sorted(p.name for p in raw.iterdir()) == sorted(files)
    assert "http://down/train-images-idx3-ubyte.gz" in urls  # first mirror tried, then next
    dones = [c[0] for c in calls]
    assert dones == sorted(dones) and dones[-1] == sum(len(b) for b in files.values())
    assert all(total >= done for done, total, _ in calls)
    # a second call finds the verified files and downloads nothing
    urls.clear()
    D.download_fashion_mnist(tmp_path / "app", sources=(["http://up/"], resources))
    assert urls == []


def test_download_failure_is_clear_and_leaves_nothing(tmp_path, monkeypatch):
    _, resources = _served(tmp_path)

    def offline(url, timeout):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(D, "_open_url", offline)
    with pytest.raises(DataError) as info:
        D.download_fashion_mnist(tmp_path / "app", sources=(["http://m/"], resources))
    msg = str(info.value)
    assert "could not download train-images-idx3-ubyte.gz" in msg
    assert "name resolution" in msg and "internet" in msg and "dataset-fashion-mnist" in msg
    assert list((tmp_path / "app" / "FashionMNIST" / "raw").iterdir()) == []


def test_download_checksum_mismatch(tmp_path, monkeypatch):
    files, resources = _served(tmp_path)
    resources[0] = (resources[0][0], "0" * 32)
    monkeypatch.setattr(D, "_open_url", lambda url, timeout: FakeResponse(
        files[url.rsplit("/", 1)[1]]))
    with pytest.raises(DataError, match="checksum mismatch"):
        D.download_fashion_mnist(tmp_path / "app", sources=(["http://m/"], resources))
    assert list((tmp_path / "app" / "FashionMNIST" / "raw").iterdir()) == []


def test_download_can_be_cancelled(tmp_path, monkeypatch):
    files, resources = _served(tmp_path)
    monkeypatch.setattr(D, "_open_url", lambda url, timeout: FakeResponse(
        files[url.rsplit("/", 1)[1]]))
    monkeypatch.setattr(D, "DOWNLOAD_CHUNK", 100)
    seen = []
    with pytest.raises(D.DownloadCancelled):
        D.download_fashion_mnist(tmp_path / "app", lambda *a: seen.append(a),
                                 should_stop=lambda: len(seen) >= 3,
                                 sources=(["http://m/"], resources))
    assert list((tmp_path / "app" / "FashionMNIST" / "raw").iterdir()) == []


# -- memory bounds and user folders (issue 8 §6)


def _gzip_stream(folder: Path, role: str, header: bytes, zeros: int) -> Path:
    """A gzip of ``header`` plus ``zeros`` zero bytes, written without holding them all."""
    path = folder / f"{NAMES[role]}.gz"
    (folder / NAMES[role]).unlink(missing_ok=True)
    with gzip.open(path, "wb", compresslevel=1) as fh:
        fh.write(header)
        chunk = bytes(1 << 20)
        for _ in range(zeros >> 20):
            fh.write(chunk)
    return path


def _peak_bytes(fn) -> tuple[int, BaseException | None]:
    import tracemalloc

    tracemalloc.start()
    try:
        fn()
        error = None
    except DataError as exc:
        error = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak, error


def test_a_gzip_that_expands_far_beyond_its_header_is_refused_without_reading_it(tmp_path):
    d = tmp_path / "d"
    arrays = write_dataset(d)
    blob = idx_images(arrays["train_x"])  # 256 images, then 64 MB the header does not promise
    path = _gzip_stream(d, "train_images", blob, 64 << 20)
    assert path.stat().st_size < 1 << 20
    peak, error = _peak_bytes(lambda: D.read_idx_images(path))
    assert error is not None and str(path) in str(error)
    assert "more than its header promises" in str(error)
    assert peak < 4 << 20, f"{peak / 1e6:.1f} MB held while reading a 0.2 MB data set"


def test_a_header_promising_more_samples_than_fashion_mnist_is_refused_before_reading(tmp_path):
    d = tmp_path / "d"
    write_dataset(d)
    header = struct.pack(">IIII", 2051, 2_000_000, 28, 28)  # 1.5 GB promised
    path = _gzip_stream(d, "train_images", header, 4 << 20)
    peak, error = _peak_bytes(lambda: D.read_idx_images(path))
    assert error is not None and "claims 2,000,000 images" in str(error)
    assert "at most 60,000" in str(error) and peak < 4 << 20
    labels = _corrupt(d, "train_labels", struct.pack(">II", 2049, 70_000) + bytes(70_000))
    with pytest.raises(DataError, match="claims 70,000 labels"):
        D.read_idx_labels(labels)


def test_an_empty_user_folder_does_not_fall_back_to_another_copy(tmp_path):
    user, system = tmp_path / "user", tmp_path / "system"
    user.mkdir()
    write_dataset(system)
    search = dict(app_dir=tmp_path / "app", system_dirs=[system], torchvision_roots=())
    with pytest.raises(DataError, match="holds no Fashion-MNIST files") as info:
        D.find_dataset(user, **search)
    assert str(user) in str(info.value)
    (user / "FashionMNIST" / "raw").mkdir(parents=True)  # an empty torchvision layout too
    with pytest.raises(DataError, match="holds no Fashion-MNIST files"):
        D.find_dataset(user, **search)
    assert D.find_dataset(None, **search).folder == system  # no folder chosen: search


def test_a_user_folder_that_is_a_file_or_empty_text_says_so(tmp_path):
    search = dict(app_dir=tmp_path / "app", system_dirs=[], torchvision_roots=())
    f = tmp_path / "train-images-idx3-ubyte"
    f.write_bytes(b"x")
    with pytest.raises(DataError, match="is a file, not a folder"):
        D.find_dataset(f, **search)
    with pytest.raises(DataError, match="name is empty"):
        D.find_dataset("", **search)
    with pytest.raises(DataError, match="does not exist"):
        D.find_dataset(tmp_path / "typo", **search)
    with pytest.raises(DataError, match="does not exist"):  # Path.expanduser would raise
        D.find_dataset("~nosuchuser9/data", **search)


def test_cli_data_dir_naming_a_file_or_empty_folder(tmp_path, capsys, monkeypatch):
    from optgui.cli import main

    monkeypatch.setenv(D.DATA_DIR_ENV, str(tmp_path / "app"))
    f = tmp_path / "data.bin"
    f.write_bytes(b"x")
    empty = tmp_path / "empty"
    empty.mkdir()
    for where, words in ((f, "is a file, not a folder"), (empty, "holds no Fashion-MNIST")):
        assert main(["train", "--data-dir", str(where), "--epochs", "1"]) == 2
        err = capsys.readouterr().err
        assert words in err and err.count("\n") == 1
