"""Data: the IDX reader, dataset lookup and download, built-in data, batching, binarization.

    ds = load_dataset("mnist", "train")        # ds.images (60000, 784) float32 in [0, 1]
    for xb, yb in batches(ds.images, 100, ds.labels, rng=rng):
        ...                                    # device arrays, (100, 784) and (100,)

Where MNIST and Fashion-MNIST are looked for, in order:

1. ``$MINIVAE_DATA/<folder>/``, folder ``mnist`` or ``fashion-mnist``;
2. the user cache ``$XDG_CACHE_HOME/minivae/<folder>/`` (else ``~/.cache/minivae/<folder>/``);
3. for Fashion-MNIST, Debian's ``dataset-fashion-mnist`` package folder.

Each folder holds the four standard files, gzipped or not. When a file is missing
and ``MINIVAE_OFFLINE`` is not "1", it is downloaded into the cache from public
mirrors, checked against the SHA-256 values below and written atomically
(``minivae.files``). With ``MINIVAE_OFFLINE=1`` nothing is downloaded, not even by
``download`` itself, and the errors say where to put the files instead.

``read_idx`` trusts no header: the dimensions it declares are checked (exact
integers, at most ``MAX_IDX_BYTES``) before the payload is read, a gzip stream is
unpacked a chunk at a time and never past the declared size, and every error is a
``DataError`` that names the file.

Two data sets need no files at all: ``fashion-mnist-builtin``, a class-balanced
subset of Fashion-MNIST shipped inside the package (see ``minivae/builtin/README.md``),
and ``shapes``, dSprites-style binary images drawn by ``make_shapes``.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import http.client
import math
import os
import sys
import urllib.request
import zlib
from pathlib import Path

from minivae import backend as B
from minivae.files import atomic_writer

np = B.np  # host-side NumPy (the data live on the host until ``batches`` moves them)


class DataError(ValueError):
    """A data file is missing, truncated or corrupt, or a download failed."""


class DatasetNotFound(DataError):
    """A data set's files are in none of the places searched; ``reason`` says why in a few words."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


# ----------------------------------------------------------------------------- catalogue

DATASETS = {
    "mnist": "MNIST handwritten digits, 60000 train / 10000 test, 28x28 grey",
    "fashion-mnist": "Fashion-MNIST (Zalando) clothing, 60000 train / 10000 test, 28x28 grey",
    "fashion-mnist-builtin": "a class-balanced Fashion-MNIST subset shipped with minivae "
    "(7000 train / 2000 test), works offline",
    "shapes": "dSprites-style binary shapes (square, ellipse, heart) with known factors, "
    "generated on the fly",
}
DOWNLOADABLE = ("mnist", "fashion-mnist")
SPLITS = ("train", "test")

FILES = {  # split -> (images file, labels file), without ".gz"
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
ALL_FILES = FILES["train"] + FILES["test"]

MIRRORS = {  # tried in order; each serves the four .gz files
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    "fashion-mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
}

# SHA-256 of the original .gz files that the mirrors serve; MNIST's as published, Fashion-MNIST's
# checked against Zalando's published MD5 (see minivae/builtin/README.md)
SHA256 = {
    "mnist": {
        "train-images-idx3-ubyte":
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte":
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte":
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte":
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte":
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte":
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte":
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte":
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
}

SYSTEM_DIRS = {  # folders installed by system packages, searched last
    "mnist": (),
    "fashion-mnist": (Path("/usr/share/datasets/fashion-mnist"),),
}

MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"
BUILTIN_FILE = BUILTIN_DIR / "fashion_mnist_subset.npz"


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Images and labels of one split, with what a lesson needs to know about them."""

    images: object = dataclasses.field(repr=False)  # (N, D) float32 in [0, 1], NumPy
    labels: object = dataclasses.field(repr=False)  # (N,) int64, NumPy
    name: str
    split: str
    image_shape: tuple = (28, 28)
    n_classes: int = 10
    source: str = ""
    class_names: tuple = ()
    factors: object = dataclasses.field(default=None, repr=False)  # (N, F) int64, or None
    factor_names: tuple | None = None
    factor_sizes: tuple | None = None

    def __len__(self) -> int:
        return len(self.labels)


def canonical_name(name: str) -> str:
    """The catalogue spelling of a data set name ("fashion_mnist" -> "fashion-mnist")."""
    key = str(name).strip().lower().replace("_", "-")
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")
    return key


def dataset_info(name: str) -> dict:
    """What a model needs to know about a data set before loading it: x_dim, classes, shape."""
    name = canonical_name(name)
    if name == "shapes":
        shape, classes = (32, 32), SHAPE_NAMES
    else:
        shape, classes = (28, 28), MNIST_CLASSES if name == "mnist" else FASHION_CLASSES
    return {"name": name, "description": DATASETS[name], "image_shape": shape,
            "x_dim": shape[0] * shape[1], "n_classes": len(classes), "class_names": classes}


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    return split


# ----------------------------------------------------------------------------- IDX files

# IDX type codes (third byte of the magic number) -> big-endian dtype
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_GZIP_MAGIC = b"\x1f\x8b"


MAX_IDX_BYTES = 1 << 30  # 1 GiB, over 20 times MNIST's largest file (47 MB unpacked)
_CHUNK = 1 << 22  # bytes read (and decompressed) at a time


def read_idx(path, max_bytes: int = MAX_IDX_BYTES):
    """Read an IDX file (gzipped or raw, told apart by the gzip magic bytes) into a NumPy array.

    The header is checked before the payload is read: its dimensions give the payload's
    size (Python integers, so no overflow), which must not exceed ``max_bytes``. A gzip
    stream is decompressed a chunk at a time and never past that size plus one byte, so a
    small file that would unpack to gigabytes (a gzip bomb) is refused after reading only
    what its header declares. Every error is a DataError naming the file.
    """
    path = Path(path)
    try:
        with open(path, "rb") as raw:
            if raw.read(2) == _GZIP_MAGIC:
                raw.seek(0)
                with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                    return _read_idx_stream(path, stream, None, max_bytes)
            raw.seek(0)
            return _read_idx_stream(path, raw, os.fstat(raw.fileno()).st_size, max_bytes)
    except DataError:
        raise
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise DataError(
            f"{path}: the gzip stream is truncated or corrupt ({err}); delete the file "
            "and fetch it again"
        ) from err
    except OSError as err:
        raise DataError(f"{path}: cannot be read ({err.strerror or err})") from err


def _read_exact(stream, n: int) -> bytearray:
    """Up to n bytes from stream, read a chunk at a time (fewer only at the end of the data)."""
    buffer = bytearray(n)
    view, got = memoryview(buffer), 0
    while got < n:
        chunk = stream.read(min(_CHUNK, n - got))
        if not chunk:
            break
        view[got : got + len(chunk)] = chunk
        got += len(chunk)
    del view
    if got < n:
        del buffer[got:]
    return buffer


def _read_idx_stream(path: Path, stream, file_size, max_bytes: int):
    """The IDX array from an open stream; file_size is known for a raw file, None for gzip."""
    magic = _read_exact(stream, 4)
    if len(magic) < 4:
        raise DataError(f"{path}: only {len(magic)} bytes, too short for an IDX header")
    zero0, zero1, code, ndim = magic
    if zero0 != 0 or zero1 != 0 or code not in _IDX_DTYPES or ndim == 0:
        raise DataError(
            f"{path}: bad IDX magic number {bytes(magic).hex()} (expected 0000 then a type code "
            f"in {sorted(hex(c) for c in _IDX_DTYPES)} then the number of dimensions); "
            "is this an IDX file?"
        )
    header = 4 + 4 * ndim
    raw_dims = _read_exact(stream, 4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise DataError(f"{path}: truncated header ({4 + len(raw_dims)} bytes, {ndim} dims "
                        f"need {header})")  # fmt: skip
    dims = tuple(int.from_bytes(raw_dims[4 * i : 4 * i + 4], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[code])
    payload = math.prod(dims) * dtype.itemsize  # Python integers: exact, however large
    if payload > max_bytes:
        raise DataError(
            f"{path}: the header declares dims {dims} of {dtype.itemsize}-byte items, "
            f"{payload:,} bytes, more than the {max_bytes:,} bytes an IDX file may hold here; "
            "the file is corrupt or not a data set file. Delete it and fetch it again"
        )
    expected = header + payload
    if file_size is not None and file_size != expected:  # a raw file: its size tells at once
        fault = "truncated" if file_size < expected else "has trailing bytes"
        raise DataError(
            f"{path}: file {fault}: dims {dims} of {dtype.itemsize}-byte items need "
            f"{expected} bytes, found {file_size}; delete the file and fetch it again"
        )
    data = _read_exact(stream, payload)
    if len(data) < payload:
        raise DataError(
            f"{path}: file truncated: dims {dims} of {dtype.itemsize}-byte items need "
            f"{expected} bytes, found {header + len(data)}; delete the file and fetch it again"
        )
    if stream.read(1):  # one byte more than declared: stop there (a gzip bomb stops here)
        raise DataError(
            f"{path}: file has trailing bytes: its data go on past the {expected} bytes that "
            f"dims {dims} of {dtype.itemsize}-byte items need; it was not read further. "
            "Delete the file and fetch it again"
        )
    array = np.frombuffer(data, dtype=dtype).reshape(dims)  # writable: data is a bytearray
    return array.astype(dtype.newbyteorder("="), copy=False)  # native byte order


# ----------------------------------------------------------------------------- lookup

def _folder(name: str) -> str:
    return name  # "mnist" or "fashion-mnist", the folder name inside each place


def cache_dir(name: str) -> Path:
    """The user cache folder of a data set (where downloads go)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "minivae" / _folder(name)


def search_dirs(name: str) -> list:
    """The folders searched for a data set's files, in order."""
    name = canonical_name(name)
    if name not in DOWNLOADABLE:
        raise ValueError(f"{name!r} has no files to search for: only {', '.join(DOWNLOADABLE)} do")
    dirs = []
    if os.environ.get("MINIVAE_DATA"):
        dirs.append(Path(os.environ["MINIVAE_DATA"]) / _folder(name))
    dirs.append(cache_dir(name))
    dirs.extend(SYSTEM_DIRS.get(name, ()))
    return dirs


def _find(directory: Path, stem: str):
    for candidate in (directory / (stem + ".gz"), directory / stem):
        if candidate.is_file():
            return candidate
    return None


def locate(name: str) -> dict:
    """Where each file of a data set was found (a Path) or None; shapes need no file."""
    name = canonical_name(name)
    if name == "fashion-mnist-builtin":
        return {BUILTIN_FILE.name: BUILTIN_FILE if BUILTIN_FILE.is_file() else None}
    if name == "shapes":
        return {}
    dirs = search_dirs(name)
    found = {}
    for stem in ALL_FILES:
        found[stem] = next((p for p in (_find(d, stem) for d in dirs) if p is not None), None)
    return found


def _offline() -> bool:
    return os.environ.get("MINIVAE_OFFLINE", "").strip() == "1"


# ----------------------------------------------------------------------------- download

def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class DownloadError(DataError):
    """A download failed on every mirror; ``attempts`` holds one line per URL tried."""

    def __init__(self, message: str, attempts: list):
        super().__init__(message)
        self.attempts = attempts


def _without_download(name: str) -> list:
    """The ways to get a data set without downloading, one line each."""
    names = ", ".join(stem + "(.gz)" for stem in ALL_FILES)
    put = (f"  - put the four files ({names}) in a folder "
           f"<DIR>/{_folder(name)}/ and set MINIVAE_DATA=<DIR>;")  # fmt: skip
    lines = [put]
    if name == "fashion-mnist":
        lines.append("  - or on Debian/Ubuntu: apt-get install dataset-fashion-mnist;")
    lines.append("  - or use the built-in subset that needs no files: fashion-mnist-builtin.")
    return lines


def _fetch(url: str, target: Path, sha256: str) -> None:
    """Download url to target atomically (``minivae.files``); raise on any fault, leave nothing."""
    from tqdm import tqdm  # imported here: only a download needs it

    digest = hashlib.sha256()
    received = 0
    with atomic_writer(target) as out, urllib.request.urlopen(url, timeout=60) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length else None
        with tqdm(total=total, unit="B", unit_scale=True, desc=target.name,
                  disable=not sys.stderr.isatty()) as bar:  # fmt: skip
            for block in iter(lambda: response.read(1 << 16), b""):
                out.write(block)
                digest.update(block)
                received += len(block)
                bar.update(len(block))
        # raised inside the block: the temporary file goes, the target is never touched
        if total is not None and received != total:
            raise DataError(f"download interrupted: got {received} of {total} bytes")
        if digest.hexdigest() != sha256:
            raise DataError(f"SHA-256 mismatch: got {digest.hexdigest()}, expected {sha256}")


def download(name: str, files=None, force: bool = False) -> dict:
    """Download a data set's .gz files (default: all four) into the user cache; return paths.

    Refused with a DataError when MINIVAE_OFFLINE=1. Files already in the cache with the
    right SHA-256 are kept (unless force). Each file is checked against its SHA-256 and
    written atomically; a failure on every mirror raises a DownloadError that lists each
    URL's error and the ways to do without a download.
    """
    name = canonical_name(name)
    if name not in DOWNLOADABLE:
        raise ValueError(f"only {', '.join(DOWNLOADABLE)} can be downloaded, not {name!r}")
    files = ALL_FILES if files is None else tuple(files)
    unknown = [f for f in files if f not in ALL_FILES]
    if unknown:
        raise ValueError(f"unknown file(s) {unknown}: choose from {', '.join(ALL_FILES)}")
    if _offline():
        raise DataError(
            f"not downloading {name}: downloads are off (MINIVAE_OFFLINE=1). Unset "
            "MINIVAE_OFFLINE (or set it to 0) to download, or do without:\n"
            + "\n".join(_without_download(name))
        )
    folder = cache_dir(name)
    paths = {}
    for stem in files:
        target = folder / (stem + ".gz")
        expected = SHA256[name][stem]
        if not force and target.is_file() and _sha256(target) == expected:
            paths[stem] = target
            continue
        errors = []
        for mirror in MIRRORS[name]:
            url = mirror + stem + ".gz"
            try:
                _fetch(url, target, expected)
            except (OSError, ValueError, http.client.HTTPException) as err:
                # network, HTTP, truncation or checksum (DataError): try the next mirror
                errors.append(f"  {url}: {err}")
                continue
            paths[stem] = target
            break
        else:
            raise DownloadError(
                f"could not download {stem}.gz of {name} into {folder}:\n" + "\n".join(errors)
                + "\nCheck the internet connection and try again, or do without a download:\n"
                + "\n".join(_without_download(name)),
                errors,
            )
    return paths


# ----------------------------------------------------------------------------- loading

def _how_to_get(name: str) -> str:
    lines = ["How to get it:", *_without_download(name),
             f"  - or run `minivae download {name}` (needs the internet and MINIVAE_OFFLINE unset)."]
    return "\n".join(lines)


def _not_found(name: str, split: str, missing, why: str, detail: str = "") -> DatasetNotFound:
    places = "\n".join(f"  - {d}/" for d in search_dirs(name))
    wanted = ", ".join(f"{s}(.gz)" for s in missing)
    return DatasetNotFound(
        f"{name} ({split}) is not available: {why}.\n"
        f"Missing {wanted}; looked in, in order:\n{places}\n{detail}{_how_to_get(name)}",
        reason=why,
    )


def _load_idx_split(name: str, split: str) -> Dataset:
    stems = FILES[split]
    found = locate(name)
    missing = [s for s in stems if found[s] is None]
    if missing:
        if _offline():
            raise _not_found(name, split, missing,
                             "found no local files and downloads are off (MINIVAE_OFFLINE=1)")
        try:
            download(name, files=missing)
        except DownloadError as err:
            raise _not_found(name, split, missing, "found no local files and the download failed",
                             detail="Download errors:\n" + "\n".join(err.attempts) + "\n") from err
        found = locate(name)
    images_path, labels_path = found[stems[0]], found[stems[1]]
    images = read_idx(images_path)  # (N, 28, 28) uint8
    labels = read_idx(labels_path)  # (N,) uint8
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(f"{images_path}: expected uint8 images (N, 28, 28), got "
                        f"{images.dtype} {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(f"{labels_path}: expected {len(images)} labels to match {images_path}, "
                        f"got shape {labels.shape}; the two files are from different sets or "
                        "one is damaged: delete both and fetch them again")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"{labels_path}: labels must lie in 0..9, "
                        f"found {labels.min()}..{labels.max()}")
    source = str(images_path.parent)
    if labels_path.parent != images_path.parent:
        source += f" (labels: {labels_path.parent})"
    return Dataset(
        images=images.reshape(len(images), -1).astype(np.float32) / 255.0,  # (N, 784)
        labels=labels.astype(np.int64),
        name=name, split=split, source=source,
        class_names=MNIST_CLASSES if name == "mnist" else FASHION_CLASSES,
    )


def _load_builtin(split: str) -> Dataset:
    if not BUILTIN_FILE.is_file():
        raise DataError(f"the built-in data file {BUILTIN_FILE} is missing: reinstall minivae")
    with np.load(BUILTIN_FILE, allow_pickle=False) as z:
        images = z[f"{split}_images"]  # (N, 28, 28) uint8
        labels = z[f"{split}_labels"]  # (N,) uint8
    return Dataset(
        images=images.reshape(len(images), -1).astype(np.float32) / 255.0,  # (N, 784)
        labels=labels.astype(np.int64),
        name="fashion-mnist-builtin", split=split, source=str(BUILTIN_FILE),
        class_names=FASHION_CLASSES,
    )


SHAPES_SPLITS = {"train": (50000, 0), "test": (2000, 1)}  # split -> (examples, seed)


def load_dataset(name: str, split: str = "train") -> Dataset:
    """Load one split of a catalogued data set (see DATASETS) as a Dataset of NumPy arrays."""
    name = canonical_name(name)
    split = _check_split(split)
    if name == "fashion-mnist-builtin":
        return _load_builtin(split)
    if name == "shapes":
        n, seed = SHAPES_SPLITS[split]
        return make_shapes(n, seed, split=split)
    return _load_idx_split(name, split)


def load_for_lesson(name: str, split: str = "train", offline_ok: bool = True) -> Dataset:
    """load_dataset; when MNIST or Fashion-MNIST cannot be had, say so and use the built-in set."""
    try:
        return load_dataset(name, split)
    except DataError as err:
        if not offline_ok or canonical_name(name) not in DOWNLOADABLE:
            raise
        name = canonical_name(name)
        why = getattr(err, "reason", str(err).splitlines()[0])
        print(
            f"minivae: wanted {name} ({split}) but {why}: using the built-in "
            f"Fashion-MNIST subset instead (for the real data, set MINIVAE_DATA=<dir holding "
            f"{_folder(name)}/> or run `minivae download {name}`)."
        )
        return load_dataset("fashion-mnist-builtin", split)


# ----------------------------------------------------------------------------- shapes

SHAPE_NAMES = ("square", "ellipse", "heart")
FACTOR_NAMES = ("shape", "scale", "orientation", "pos_x", "pos_y")
FACTOR_SIZES = (3, 6, 10, 16, 16)


def shape_factor_values(size: int = 32) -> dict:
    """The value behind each factor index: radius and centre in pixels, angle in radians."""
    r_max = 0.2 * size
    margin = 1.15 * r_max + 1.0  # a square's corner reaches 0.8*sqrt(2) = 1.13 radii; +1 px clear
    return {
        "shape": np.arange(FACTOR_SIZES[0]),
        "scale": np.linspace(0.5, 1.0, FACTOR_SIZES[1]) * r_max,
        "orientation": np.arange(FACTOR_SIZES[2]) * (2 * np.pi / FACTOR_SIZES[2]),
        "pos_x": np.linspace(margin, size - margin, FACTOR_SIZES[3]),
        "pos_y": np.linspace(margin, size - margin, FACTOR_SIZES[4]),
    }


def _inside(kind: int, u, v):
    """The shape's implicit inequality at points (u, v) of its own frame (radius 1, y up)."""
    if kind == 0:  # square of half-side 0.8
        return np.maximum(np.abs(u), np.abs(v)) <= 0.8
    if kind == 1:  # ellipse with semi-axes 1 and 0.5
        return u * u + 4.0 * v * v <= 1.0
    x, y = 1.25 * u, 1.25 * v + 0.125  # heart (x^2 + y^2 - 1)^3 <= x^2 y^3, point down
    t = x * x + y * y - 1.0
    return t * t * t <= x * x * y * y * y


def render_shapes(factors, size: int = 32):
    """One binary image per row of factor indices: (N, 5) -> (N, size*size) float32 in {0, 1}."""
    factors = np.asarray(factors)
    if factors.ndim != 2 or factors.shape[1] != len(FACTOR_NAMES):
        raise ValueError(f"factors must have shape (N, {len(FACTOR_NAMES)}), got {factors.shape}")
    for j, (fname, n) in enumerate(zip(FACTOR_NAMES, FACTOR_SIZES)):
        if factors.size and (factors[:, j].min() < 0 or factors[:, j].max() >= n):
            raise ValueError(f"factor {fname} (column {j}) must lie in 0..{n - 1}")
    if size < 8:
        raise ValueError(f"size must be at least 8 pixels, got {size}")
    values = {k: v.astype(np.float32) for k, v in shape_factor_values(size).items()}
    centres = np.arange(size, dtype=np.float32) + 0.5
    gx = np.tile(centres, size)[None, :]    # (1, P) pixel-centre column coordinate
    gy = np.repeat(centres, size)[None, :]  # (1, P) pixel-centre row coordinate
    out = np.empty((len(factors), size * size), dtype=np.float32)
    for kind in range(len(SHAPE_NAMES)):
        rows = np.flatnonzero(factors[:, 0] == kind)
        for start in range(0, len(rows), 2048):  # chunks bound the (n, P) temporaries
            f = factors[rows[start:start + 2048]]            # (n, 5)
            r = values["scale"][f[:, 1]][:, None]            # (n, 1) radius in pixels
            theta = values["orientation"][f[:, 2]][:, None]  # (n, 1)
            dx = gx - values["pos_x"][f[:, 3]][:, None]      # (n, P) right of the centre
            dy = values["pos_y"][f[:, 4]][:, None] - gy      # (n, P) above the centre (y up)
            cos, sin = np.cos(theta) / r, np.sin(theta) / r
            u = cos * dx + sin * dy   # the pixel in the shape's own frame:
            v = cos * dy - sin * dx   # rotated back by theta and divided by the radius
            out[rows[start:start + 2048]] = _inside(kind, u, v)
    return out


def make_shapes(n: int, seed: int = 0, size: int = 32, split: str = "generated") -> Dataset:
    """n random shapes with uniformly drawn factors, the same for the same seed; labels = shape."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    gen = np.random.default_rng(seed)
    factors = gen.integers(0, FACTOR_SIZES, size=(n, len(FACTOR_SIZES))).astype(np.int64)
    return Dataset(
        images=render_shapes(factors, size),  # (n, size*size)
        labels=factors[:, 0].copy(),
        name="shapes", split=split, image_shape=(size, size), n_classes=len(SHAPE_NAMES),
        source=f"make_shapes(n={n}, seed={seed}, size={size})", class_names=SHAPE_NAMES,
        factors=factors, factor_names=FACTOR_NAMES, factor_sizes=FACTOR_SIZES,
    )


# ----------------------------------------------------------------------------- preprocessing

def _check_unit_interval(images) -> None:
    if not images.size:
        raise ValueError("no images to binarize (an empty array)")
    lo, hi = float(images.min()), float(images.max())  # a NaN makes both NaN
    if not (lo >= 0.0 and hi <= 1.0):
        raise ValueError(f"images must be intensities in [0, 1] to binarize, found {lo}..{hi}"
                         + (" (NaN among them)" if math.isnan(lo) or math.isnan(hi) else ""))


def binarize(images, rng=None):
    """A Bernoulli draw per pixel, p = intensity; call it each epoch for dynamic binarization."""
    _check_unit_interval(images)
    if rng is None:
        rng = B.rng_on_cpu() if B.array_device(images) == "cpu" else B.rng()
    u = rng.random(images.shape, dtype=np.float32)  # uniform in [0, 1): P(u < p) = p
    return (u < images).astype(images.dtype)


def binarize_fixed(images, seed: int = 0):
    """The binarization done once with a fixed seed (the "test set binarized once" protocol)."""
    host = B.to_numpy(images)
    _check_unit_interval(host)
    u = np.random.default_rng(seed).random(host.shape, dtype=np.float32)
    out = (u < host).astype(host.dtype)
    return out if B.array_device(images) == "cpu" else B.from_numpy(out)


BINARIZATIONS = ("dynamic", "fixed", "none")


def binarized(images, how: str, rng=None, seed: int = 0):
    """images binarized as the training loop's option says: "dynamic" a fresh Bernoulli draw
    (rng), "fixed" the draw of ``seed`` (the same every call), "none" the grey levels."""
    if how == "dynamic":
        return binarize(images, rng)
    if how == "fixed":
        return binarize_fixed(images, seed=seed)
    if how == "none":
        return images
    raise ValueError(f"unknown binarization {how!r}: choose one of {', '.join(BINARIZATIONS)}")


def first_rows(ds: Dataset, n: int) -> Dataset:
    """The first n examples of a Dataset (all of them when it has fewer)."""
    return subset(ds, slice(0, n), ds.split)


def subset(ds: Dataset, index, split: str) -> Dataset:
    """The rows ``index`` of a Dataset (images, labels and factors alike), named ``split``."""
    return dataclasses.replace(
        ds, images=ds.images[index], labels=ds.labels[index], split=split,
        factors=None if ds.factors is None else ds.factors[index],
    )


def split_rows(n: int, n_val: int, seed: int = 0):
    """(train rows, validation rows) of n examples: n_val drawn by seed, the rest; each sorted.

    The one split rule of the project (``train_val_split`` and the training loop use it):
    the two are disjoint and together every row. n_val = 0 leaves no validation rows.
    """
    if not 0 <= n_val < max(n, 1):
        raise ValueError(f"n_val must be in 0..{n - 1} for {n} examples, got {n_val}")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def train_val_split(ds: Dataset, n_val: int, seed: int = 0):
    """Split a Dataset into (train, val), n_val examples drawn by seed for val; order kept."""
    n = len(ds)
    if not 0 < n_val < n:
        raise ValueError(f"n_val must be in 1..{n - 1} for {n} examples, got {n_val}")
    train, val = split_rows(n, n_val, seed)
    return subset(ds, train, "train"), subset(ds, val, "val")


def labelled_subset(labels, n: int, seed: int = 0, n_classes: int | None = None):
    """Indices of n examples, n / n_classes of each class drawn by seed (sorted, int64)."""
    labels = np.asarray(B.to_numpy(labels))
    if n_classes is None:
        n_classes = int(labels.max()) + 1 if labels.size else 0
    if n_classes <= 0 or n <= 0 or n % n_classes:
        raise ValueError(f"n must be a positive multiple of n_classes={n_classes}, got n={n}")
    per_class = n // n_classes
    gen = np.random.default_rng(seed)
    chosen = []
    for c in range(n_classes):
        members = np.flatnonzero(labels == c)
        if len(members) < per_class:
            raise ValueError(f"class {c} has {len(members)} examples, fewer than the "
                             f"{per_class} per class that n={n} needs")
        chosen.append(gen.choice(members, size=per_class, replace=False))
    return np.sort(np.concatenate(chosen)).astype(np.int64)


# ----------------------------------------------------------------------------- batches

BATCH_KINDS = ("images", "labelled", "semi-supervised")


@dataclasses.dataclass
class Batch:
    """One minibatch as a model's ``loss`` and ``evaluate`` read it (device arrays).

    What it must hold is the model's ``batch_kind``:
        "images"           x
        "labelled"         x and its labels y
        "semi-supervised"  x (unlabelled images) plus x_labelled and y_labelled;
                           for evaluation, x with its labels y
    Labels are what the model's ``dataset_labels`` gives: class indices (B,), or
    real-valued properties (B, k).
    """

    x: object = None  # (B, x_dim) images
    y: object = None  # labels of x, or None
    x_labelled: object = None  # (B_l, x_dim) labelled images of a semi-supervised batch
    y_labelled: object = None  # their labels

    def __len__(self) -> int:
        """Examples in the batch: the rows of x plus those of x_labelled."""
        return sum(len(a) for a in (self.x, self.x_labelled) if a is not None)


def to_device(a):
    """A host array on the current device: floats in the default dtype, integers as int64."""
    if not hasattr(a, "dtype"):  # a list or a number
        a = np.asarray(a)
    kind = a.dtype.kind
    if kind == "f":
        return B.from_numpy(np.ascontiguousarray(a), dtype=B.get_default_dtype())
    if kind in "iu":
        return B.from_numpy(a, dtype=np.int64)
    return B.from_numpy(a)


def _check_batch_size(batch_size) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


def batch_rows(n: int, batch_size: int, rng=None, shuffle: bool = True, drop_last: bool = False):
    """The row indices of each minibatch of n rows (host int arrays), each row once.

    rng (a NumPy Generator) draws the order when shuffling, at the first batch; by
    default the backend's seeded cpu generator. drop_last leaves out a last, smaller batch.
    """
    batch_size = _check_batch_size(batch_size)
    if shuffle and rng is None:
        rng = B.rng_on_cpu()

    def generate():
        order = rng.permutation(n) if shuffle else np.arange(n)
        stop = n - n % batch_size if drop_last else n
        for start in range(0, stop, batch_size):
            yield order[start:start + batch_size]

    return generate()


def batches(x, batch_size: int, *extra, rng=None, shuffle: bool = True, drop_last: bool = False):
    """Minibatches of x (and of each extra array, same rows) as device arrays, each row once.

    Yields xb alone when there are no extras, else a tuple (xb, *extra_b). Float arrays take
    the backend's default dtype, integer arrays int64. rng (a NumPy Generator) shuffles; by
    default the backend's seeded cpu generator.
    """
    _check_batch_size(batch_size)
    n = len(x)
    for i, a in enumerate(extra):
        if len(a) != n:
            raise ValueError(f"extra array {i} has {len(a)} rows but x has {n}: they must match")
    rows = batch_rows(n, batch_size, rng=rng, shuffle=shuffle, drop_last=drop_last)

    def generate():
        for index in rows:
            if not extra:
                yield to_device(x[index])
            else:
                yield (to_device(x[index]),) + tuple(to_device(a[index]) for a in extra)

    return generate()


def _check_batch_kind(batch_kind: str) -> str:
    if batch_kind not in BATCH_KINDS:
        raise ValueError(f"unknown batch kind {batch_kind!r}: choose one of {', '.join(BATCH_KINDS)}")
    return batch_kind


def pick_labelled(batch_kind: str, classes, n: int, seed: int = 0, n_classes: int | None = None):
    """The labelled rows a batch kind trains on: ``labelled_subset`` indices for
    "semi-supervised", None for the others (they see every label, or none). n_classes: the
    data set's number of classes (by default, the largest label + 1)."""
    if _check_batch_kind(batch_kind) != "semi-supervised":
        return None
    return labelled_subset(classes, n, seed=seed, n_classes=n_classes)


def _cycle(index, size: int, rng):
    """Endless minibatches of ``size`` rows of ``index``, reshuffled each time it runs out."""
    order = rng.permutation(index)
    while True:
        if len(order) < size:
            order = rng.permutation(index)
        yield order[:size]
        order = order[size:]


def epoch_batches(batch_kind: str, x, y, batch_size: int, rng, labelled=None,
                  labelled_batch_size: int = 100):
    """One epoch of training Batches holding what ``batch_kind`` says, as device arrays.

    x (N, D) host images (binarized for this epoch), y their labels (N, ...) or None;
    every row of x comes once per epoch, in batches of batch_size (a last, smaller
    batch is dropped; fewer rows than batch_size make one batch of all of them).
    "semi-supervised": each Batch also holds min(labelled_batch_size, N_l) of the
    ``labelled`` rows with their labels, cycling through them in a fresh order.
    """
    batch_kind = _check_batch_kind(batch_kind)
    size = min(batch_size, len(x))
    if batch_kind == "semi-supervised":
        if labelled is None or y is None:
            raise ValueError("a semi-supervised batch needs labelled rows and their labels")
        picks = _cycle(labelled, min(labelled_batch_size, len(labelled)), rng)
    for index in batch_rows(len(x), size, rng=rng, drop_last=True):
        xb = to_device(x[index])
        if batch_kind == "images":
            yield Batch(xb)
        elif batch_kind == "labelled":
            yield Batch(xb, to_device(y[index]))
        else:
            rows = next(picks)
            yield Batch(xb, x_labelled=to_device(x[rows]), y_labelled=to_device(y[rows]))


def evaluation_batches(x, y=None, batch_size: int = 1000):
    """Batch(x, y) of the rows of x (and their labels y, or None) in order, as device arrays."""
    for start in range(0, len(x), batch_size):
        stop = start + batch_size
        yield Batch(to_device(x[start:stop]), None if y is None else to_device(y[start:stop]))


# ----------------------------------------------------------------------------- a property of images


def slant_degrees(images, image_shape=(28, 28)):
    """Slant of each image in degrees, positive when it leans right: (N, H*W) -> (N,) float64.

    The ink I(r, c) (row r downwards, column c) is a mass with centre (r_bar, c_bar) and
    second central moments mu_rr = sum (r - r_bar)^2 I / sum I, mu_rc = sum (r - r_bar)
    (c - c_bar) I / sum I. mu_rc / mu_rr is the shear, the columns the ink moves per row
    going down (what "deskewing" MNIST undoes); a digit leaning right moves left going
    down, so  slant = atan(-mu_rc / mu_rr)  (0 = upright). Host arrays in and out.
    """
    img = np.asarray(B.to_numpy(images), dtype=np.float64).reshape(-1, *image_shape)  # (N, H, W)
    r = np.arange(image_shape[0], dtype=np.float64)[None, :, None]  # rows, downwards
    c = np.arange(image_shape[1], dtype=np.float64)[None, None, :]  # columns, rightwards
    mass = img.sum(axis=(1, 2)) + 1e-12  # (N,)
    r_bar = (img * r).sum(axis=(1, 2)) / mass  # (N,) centre of the ink
    c_bar = (img * c).sum(axis=(1, 2)) / mass
    dr, dc = r - r_bar[:, None, None], c - c_bar[:, None, None]  # (N, H, W)
    mu_rc = (img * dr * dc).sum(axis=(1, 2)) / mass  # (N,) second central moments
    mu_rr = (img * dr * dr).sum(axis=(1, 2)) / mass + 1e-12
    return np.degrees(np.arctan(-mu_rc / mu_rr))
