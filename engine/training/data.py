"""Fashion-MNIST for the vanishing-gradient lab: find it, validate it, load it once.

The four IDX files are looked for, in this order (:func:`candidate_folders`):

1. a folder the user chose (``--data-dir`` / the tab's data-folder field), either holding the
   files itself or being a torchvision root (``<dir>/FashionMNIST/raw/``);
2. the app's own data folder (:func:`app_data_dir`), where :func:`download_fashion_mnist`
   puts them (torchvision's layout, ``<app dir>/FashionMNIST/raw/``);
3. Debian's ``/usr/share/datasets/fashion-mnist`` (package ``dataset-fashion-mnist``, which
   installs the four files gzip-compressed);
4. a torchvision root in the working directory (``./data/FashionMNIST/raw/``), where the
   course's own script downloads them.

Each file may be gzip-compressed or raw IDX (torchvision keeps both; the raw one is read
first because it needs no decompression). Everything is validated before it is used: IDX
magic numbers (2051 images, 2049 labels), 28×28 images, byte counts (a truncated download is
caught here, not as a cryptic reshape error later), matching image and label counts,
labels 0–9, and for the standard locations the real set's 60,000/10,000 samples. Every
problem is a :class:`DataError` whose message names the file and says what to do.

Loading keeps the pixels as one uint8 tensor per split (47 MB for the training set): the
training code moves it to its device once and scales each gathered batch to float32 in
[0, 1], so there is no per-sample PIL conversion or transform on the training path (the
course's ``ToTensor`` through a ``DataLoader`` spends most of its time there). torch is imported
lazily: this module is on the GUI's start-up path.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import sys
import threading
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
ROWS = COLS = 28
NUM_CLASSES = 10

# role -> file name without ".gz"
FILES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
FULL_COUNTS = {"train": 60_000, "test": 10_000}
CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
TORCHVISION_SUBDIR = Path("FashionMNIST") / "raw"
DATA_DIR_ENV = "OPTGUI_DATA_DIR"  # overrides app_data_dir() (tests, portable installs)

WHAT_TO_DO = (
    "install the Debian package dataset-fashion-mnist, run `python main.py train --download`, "
    "or choose a folder holding the four Fashion-MNIST IDX files"
)


class DataError(Exception):
    """The data set is missing, incomplete or corrupt; the message says which file and why."""


# ----------------------------------------------------------------------------- locations


def app_data_dir() -> Path:
    """The app's own data folder (where downloads go), following each platform's habit.

    Linux: ``$XDG_DATA_HOME/optgui/data`` (``~/.local/share/optgui/data``); macOS:
    ``~/Library/Application Support/optgui/data``; Windows: ``%LOCALAPPDATA%\\optgui\\data``.
    ``$OPTGUI_DATA_DIR`` overrides it. Qt's QStandardPaths would say the same, but the engine
    never imports Qt.
    """
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        return Path(os.path.expanduser(override))  # (Path.expanduser raises on ~nouser)
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    return base / "optgui" / "data"


@dataclass(frozen=True)
class Candidate:
    """One folder to look in, with a label saying where it came from."""

    folder: Path
    source: str  # "user folder", "app data folder", "Debian package", "torchvision root"
    full_set: bool  # must hold the real 60,000/10,000 samples (standard locations)


def candidate_folders(
    user_dir: str | os.PathLike | None = None,
    *,
    app_dir: str | os.PathLike | None = None,
    system_dirs: Sequence[str | os.PathLike] | None = None,
    torchvision_roots: Sequence[str | os.PathLike] | None = None,
) -> list[Candidate]:
    """The folders searched, in order. Keyword arguments replace the defaults (for tests).

    A user folder may hold a subset of the data (consistent counts are enough); the standard
    locations must hold the full set, since only the real files are ever put there.
    """
    out: list[Candidate] = []
    if user_dir is not None:
        d = Path(os.path.expanduser(user_dir))
        out += [Candidate(d, "user folder", False),
                Candidate(d / TORCHVISION_SUBDIR, "user folder", False)]
    a = Path(app_dir) if app_dir is not None else app_data_dir()
    out += [Candidate(a, "app data folder", True),
            Candidate(a / TORCHVISION_SUBDIR, "app data folder", True)]
    for s in (DEBIAN_DIR,) if system_dirs is None else system_dirs:
        out.append(Candidate(Path(s), "Debian package", True))
    for r in (Path("data"),) if torchvision_roots is None else torchvision_roots:
        out.append(Candidate(Path(r) / TORCHVISION_SUBDIR, "torchvision root", True))
    return out


@dataclass(frozen=True)
class DatasetLocation:
    """Where the four files were found: ``files`` maps role -> path (raw or .gz)."""

    folder: Path
    source: str
    files: dict[str, Path] = field(hash=False)
    full_set: bool = True

    def describe(self) -> str:
        return f"{self.folder} ({self.source})"


def _find_file(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def find_dataset(
    user_dir: str | os.PathLike | None = None, **search: Any
) -> DatasetLocation:
    """The first folder that holds all four files; a :class:`DataError` if none does.

    A user folder that is empty, does not exist, is a file, or holds none or only some of the
    files is an error (a typo, an empty folder or a bad copy should not silently fall back to
    another copy). A standard folder holding only some of the files is reported by name if no
    later folder is complete, since it usually means an interrupted download.
    """
    if user_dir is not None:
        _check_user_folder(user_dir)
    candidates = candidate_folders(user_dir, **search)
    if user_dir is not None and not any(
        _find_file(c.folder, name) for c in candidates if c.source == "user folder"
        for name in FILES.values()
    ):
        # a wrong or still-empty folder must not silently fall back to another copy
        raise DataError(
            f"data folder {user_dir} holds no Fashion-MNIST files (looked in it and in its "
            f"{TORCHVISION_SUBDIR} folder); choose the folder that holds the four IDX files, "
            f"download them into it (train --download, or the lab's Download button), or "
            f"leave the data folder out to search the usual places"
        )
    partial: list[tuple[Path, list[str]]] = []
    for cand in candidates:
        if not cand.folder.is_dir():
            continue
        found = {role: _find_file(cand.folder, name) for role, name in FILES.items()}
        if all(found.values()):
            return DatasetLocation(cand.folder, cand.source,
                                   {k: v for k, v in found.items() if v}, cand.full_set)
        if any(found.values()):
            partial.append((cand.folder, [FILES[r] for r, p in found.items() if p is None]))
            if cand.source == "user folder":
                break  # the folder the user chose is incomplete: say so, don't look elsewhere
    if partial:
        folder, missing = partial[0]
        raise DataError(
            f"Fashion-MNIST in {folder} is incomplete: missing {', '.join(missing)} "
            f"(or .gz); {WHAT_TO_DO}"
        )
    searched = ", ".join(dict.fromkeys(str(c.folder) for c in candidates))
    raise DataError(f"Fashion-MNIST not found (looked in {searched}); {WHAT_TO_DO}")


def _check_user_folder(user_dir: str | os.PathLike) -> None:
    text = os.fspath(user_dir)
    if not str(text).strip():
        raise DataError(f"the data folder name is empty; give a folder, or leave it out to "
                        f"search the usual places ({WHAT_TO_DO})")
    d = Path(os.path.expanduser(user_dir))
    if d.is_dir():
        return
    if d.exists():
        raise DataError(f"data folder {user_dir} is a file, not a folder; give the folder "
                        f"that holds the four Fashion-MNIST IDX files")
    raise DataError(f"data folder {user_dir} does not exist; {WHAT_TO_DO}")


# ----------------------------------------------------------------------------- IDX files


MAX_SAMPLES = max(FULL_COUNTS.values())  # no IDX file of Fashion-MNIST holds more
_EXTRA_PROBE = 1 << 16  # bytes read past the promised end to say how much more there is
_CHUNK = 1 << 20


def _open_idx(path: Path):
    """The file opened for reading its IDX bytes, decompressing gzip by content (not by
    name); returns (file object, whether it is gzip)."""
    try:
        with open(path, "rb") as fh:
            gz = fh.read(2) == b"\x1f\x8b"
        return (gzip.open(path, "rb") if gz else open(path, "rb")), gz  # noqa: SIM115
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None


def _read_into(fh, buf: memoryview) -> int:
    got = 0
    while got < len(buf):
        n = fh.readinto(buf[got: got + _CHUNK])
        if not n:
            break
        got += n
    return got


def _read_idx(path: Path, magic: int, ndim: int) -> tuple[tuple[int, ...], np.ndarray]:
    """Validate the IDX header and read exactly the bytes it promises; return the
    dimensions and the flat uint8 data.

    The header is checked before the body is read (dimensions, the most samples
    Fashion-MNIST has), and reading stops just past the promised end, so a small gzip file
    that expands to gigabytes is refused after reading at most :data:`MAX_SAMPLES` images.
    """
    fh, gz = _open_idx(path)
    try:
        with fh:
            return _read_idx_from(fh, path, magic, ndim)
    except (EOFError, OSError, zlib.error) as exc:
        if gz:
            raise DataError(
                f"{path} is a truncated or corrupt gzip file ({exc}); delete it and "
                f"download it again, or {WHAT_TO_DO}"
            ) from None
        raise DataError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") \
            from None


def _read_idx_from(fh, path: Path, magic: int, ndim: int):
    kind = "images" if magic == IMAGES_MAGIC else "labels"
    header_len = 4 + 4 * ndim
    header = fh.read(header_len)
    if len(header) < header_len:
        raise DataError(
            f"{path} is truncated ({len(header)} bytes, shorter than an IDX header); "
            f"replace it: {WHAT_TO_DO}"
        )
    found = int.from_bytes(header[:4], "big")
    if found != magic:
        raise DataError(
            f"{path} is not an IDX {kind} file (magic number {found}, expected {magic}); "
            f"replace it: {WHAT_TO_DO}"
        )
    dims = tuple(int.from_bytes(header[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if kind == "images" and dims[1:] != (ROWS, COLS):
        raise DataError(
            f"{path} holds {dims[1]}×{dims[2]} images, Fashion-MNIST's are {ROWS}×{COLS}; "
            f"replace it: {WHAT_TO_DO}"
        )
    if dims[0] > MAX_SAMPLES:
        raise DataError(
            f"{path} claims {dims[0]:,} {kind}; Fashion-MNIST has at most {MAX_SAMPLES:,}. "
            f"The file is corrupt or another data set: replace it ({WHAT_TO_DO})"
        )
    size = int(np.prod(dims, dtype=np.int64))
    expected = header_len + size
    body = np.empty(size, dtype=np.uint8)
    got = header_len + _read_into(fh, memoryview(body))
    if got < expected:
        raise DataError(
            f"{path} is truncated: {got} bytes, the header promises {expected}; "
            f"delete it and download it again, or {WHAT_TO_DO}"
        )
    extra = len(fh.read(_EXTRA_PROBE))  # and no further: the rest may be gigabytes
    if extra:
        more = f"{extra} bytes" if extra < _EXTRA_PROBE else f"more than {_EXTRA_PROBE:,} bytes"
        raise DataError(
            f"{path} has {more} more than its header promises; "
            f"it is corrupt: replace it ({WHAT_TO_DO})"
        )
    return dims, body


def read_idx_images(path: str | os.PathLike) -> np.ndarray:
    """An IDX image file (raw or gzip) as a ``(n, 28, 28)`` uint8 array, validated."""
    path = Path(path)
    (n, rows, cols), body = _read_idx(path, IMAGES_MAGIC, 3)
    return body.reshape(n, rows, cols)


def read_idx_labels(path: str | os.PathLike) -> np.ndarray:
    """An IDX label file (raw or gzip) as a ``(n,)`` uint8 array with values 0–9."""
    path = Path(path)
    _, labels = _read_idx(path, LABELS_MAGIC, 1)
    if len(labels) and int(labels.max()) >= NUM_CLASSES:
        bad = int(np.argmax(labels >= NUM_CLASSES))
        raise DataError(
            f"{path} has label {int(labels[bad])} at index {bad}; labels must be 0–9. "
            f"The file is corrupt or not Fashion-MNIST: replace it ({WHAT_TO_DO})"
        )
    return labels


# ----------------------------------------------------------------------------- loading


@dataclass(frozen=True, eq=False)
class FashionMNIST:
    """The whole data set as torch tensors, loaded once.

    ``train_x``/``test_x`` are uint8 tensors of shape ``(n, 784)`` (flattened rows, as the
    MLP consumes them); ``train_y``/``test_y`` int64 class indices. Never modified in place,
    so one loaded copy can be shared by several runs.
    """

    train_x: Any
    train_y: Any
    test_x: Any
    test_y: Any
    location: DatasetLocation

    @property
    def n_train(self) -> int:
        return int(self.train_x.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.test_x.shape[0])


def _load_split(location: DatasetLocation, split: str):
    import torch

    img_path, lab_path = location.files[f"{split}_images"], location.files[f"{split}_labels"]
    images = read_idx_images(img_path)
    labels = read_idx_labels(lab_path)
    if len(images) != len(labels):
        raise DataError(
            f"{img_path} has {len(images)} images but {lab_path} has {len(labels)} labels; "
            f"they must match: replace them ({WHAT_TO_DO})"
        )
    if len(images) == 0:
        raise DataError(f"{img_path} holds no images; replace it ({WHAT_TO_DO})")
    if location.full_set and len(images) != FULL_COUNTS[split]:
        raise DataError(
            f"{img_path} has {len(images)} images; Fashion-MNIST's {split} set has "
            f"{FULL_COUNTS[split]}. The file is incomplete or another data set: "
            f"replace it ({WHAT_TO_DO})"
        )
    # the array was read straight into memory of its own: torch shares it, no copy
    x = torch.from_numpy(images.reshape(len(images), ROWS * COLS))
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


_cache: dict[tuple, FashionMNIST] = {}
_cache_lock = threading.Lock()


def _cache_key(location: DatasetLocation) -> tuple:
    parts: list[Any] = [location.full_set]
    for role in sorted(location.files):
        p = location.files[role]
        try:
            st = p.stat()
        except OSError as exc:
            raise DataError(f"cannot read {p}: {exc.strerror or exc}") from None
        parts.append((str(p.resolve()), st.st_size, st.st_mtime_ns))
    return tuple(parts)


def load_dataset(location: DatasetLocation) -> FashionMNIST:
    """Read, validate and convert the four files; cached per (path, size, mtime).

    The cache holds one data set, so starting the lab again (or a second window) does not
    decompress 30 MB again, while a replaced file is noticed.
    """
    key = _cache_key(location)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            return hit
    train_x, train_y = _load_split(location, "train")
    test_x, test_y = _load_split(location, "test")
    data = FashionMNIST(train_x, train_y, test_x, test_y, location)
    with _cache_lock:
        _cache.clear()
        _cache[key] = data
    return data


def load_fashion_mnist(user_dir: str | os.PathLike | None = None, **search: Any) -> FashionMNIST:
    """Find (see :func:`find_dataset`) and load Fashion-MNIST."""
    return load_dataset(find_dataset(user_dir, **search))


# ----------------------------------------------------------------------------- download

Progress = Callable[[int, int, str], None]  # (bytes done, bytes total or 0, file name)
DOWNLOAD_CHUNK = 64 * 1024
# compressed sizes, so one progress bar can cover all four files before their headers arrive
_KNOWN_SIZES = {
    "train-images-idx3-ubyte.gz": 26_421_880,
    "train-labels-idx1-ubyte.gz": 29_515,
    "t10k-images-idx3-ubyte.gz": 4_422_102,
    "t10k-labels-idx1-ubyte.gz": 5_148,
}


def _torchvision_sources() -> tuple[list[str], list[tuple[str, str]]]:
    """Mirrors and (file, md5) pairs exactly as torchvision's FashionMNIST downloads them."""
    from torchvision.datasets import FashionMNIST as TVFashionMNIST

    return list(TVFashionMNIST.mirrors), list(TVFashionMNIST.resources)


def _open_url(url: str, timeout: float):
    """Open ``url`` for reading (a separate function so tests can replace the network)."""
    import urllib.request

    request = urllib.request.Request(url, headers={"User-Agent": "pytorch/vision"})
    return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (fixed https/http URLs)


def download_fashion_mnist(
    root: str | os.PathLike | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    *,
    timeout: float = 30.0,
    sources: tuple[list[str], list[tuple[str, str]]] | None = None,
) -> DatasetLocation:
    """Download Fashion-MNIST into ``root`` (default :func:`app_data_dir`), torchvision-style.

    Files land in ``<root>/FashionMNIST/raw/`` exactly where
    ``torchvision.datasets.FashionMNIST(root, download=True)`` puts them, from the same
    mirrors and checked against the same MD5 sums (taken from torchvision), so either tool
    finds the other's download. Unlike torchvision's own ``download()`` (a tqdm bar on the
    terminal, no way to stop), this reports bytes through ``progress(done, total, name)``
    for the window's progress bar and can be cancelled between chunks via ``should_stop``.
    Each file is written to ``.part`` and renamed only once complete and verified, so an
    interrupted download never leaves a truncated file behind. The .gz files are kept and
    read directly; nothing is unpacked.
    """
    from urllib.error import URLError

    mirrors, resources = sources if sources is not None else _torchvision_sources()
    raw = Path(root if root is not None else app_data_dir()) / TORCHVISION_SUBDIR
    try:
        raw.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create data folder {raw}: {exc.strerror or exc}") from None
    total = sum(_KNOWN_SIZES.get(name, 0) for name, _ in resources)
    done = 0
    for name, md5 in resources:
        target = raw / name
        if target.is_file() and _md5(target) == md5:
            done += target.stat().st_size
            if progress:
                progress(done, total, name)
            continue
        errors = []
        for mirror in mirrors:
            url = f"{mirror}{name}"
            part = target.with_name(target.name + ".part")
            try:
                got = _fetch(url, part, timeout, done, total, name, progress, should_stop)
            except (URLError, OSError, TimeoutError) as exc:
                part.unlink(missing_ok=True)
                errors.append(f"{url}: {getattr(exc, 'reason', None) or exc}")
                continue
            except BaseException:
                part.unlink(missing_ok=True)
                raise
            if _md5(part) != md5:
                part.unlink(missing_ok=True)
                errors.append(f"{url}: checksum mismatch (corrupt or changed file)")
                continue
            os.replace(part, target)
            done += got
            break
        else:
            raise DataError(
                f"could not download {name} ({'; '.join(errors)}). Check the internet "
                f"connection and try again, or install the Debian package "
                f"dataset-fashion-mnist, or copy the four files into {raw}"
            )
    location = find_dataset(None, app_dir=raw.parent.parent, system_dirs=(),
                            torchvision_roots=())
    load_dataset(location)  # validate now, so a bad download is reported here
    return location


class DownloadCancelled(DataError):
    """The caller's ``should_stop`` asked to stop; partial files were removed."""


def _fetch(url, part, timeout, done, total, name, progress, should_stop) -> int:
    got = 0
    with _open_url(url, timeout) as response, open(part, "wb") as fh:
        while True:
            if should_stop is not None and should_stop():
                raise DownloadCancelled(f"download of {name} cancelled")
            chunk = response.read(DOWNLOAD_CHUNK)
            if not chunk:
                break
            fh.write(chunk)
            got += len(chunk)
            if progress:
                progress(done + got, max(total, done + got), name)
    return got


def _md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def noisy_labels(labels, fraction: float, seed: int = 0, num_classes: int = NUM_CLASSES):
    """``labels`` (an int64 tensor) with a seeded fraction replaced by another class.

    Exactly ``round(fraction·n)`` positions, drawn without replacement, get a class drawn
    uniformly from the *other* ``num_classes − 1`` classes (never their own), so the noise
    rate is what was asked. The same seed gives the same labels. Only the training labels
    are ever passed here: validation stays clean.
    """
    import torch

    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"label noise must be a fraction in [0, 1], got {fraction!r}")
    n = int(labels.shape[0])
    k = int(round(fraction * n))
    out = labels.clone()
    if k == 0:
        return out
    gen = torch.Generator(device="cpu").manual_seed(seed)
    where = torch.randperm(n, generator=gen)[:k].to(labels.device)
    shift = torch.randint(1, num_classes, (k,), generator=gen).to(labels.device)
    out[where] = (labels[where] + shift) % num_classes
    return out
