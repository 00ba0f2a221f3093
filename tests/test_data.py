"""Tests of minivae.data: IDX files, lookup and download, built-in data, preprocessing."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from minivae import backend as B
from minivae import data as D

np = B.np

REAL_MINIVAE_DATA = os.environ.get("MINIVAE_DATA")  # read before the isolation fixture clears it
REAL_SYSTEM_DIRS = dict(D.SYSTEM_DIRS)


# ----------------------------------------------------------------------------- helpers

_CODES = {np.dtype("u1"): 0x08, np.dtype("i1"): 0x09, np.dtype("i2"): 0x0B,
          np.dtype("i4"): 0x0C, np.dtype("f4"): 0x0D, np.dtype("f8"): 0x0E}


def idx_bytes(array) -> bytes:
    """The IDX encoding of an array: magic, big-endian dims, big-endian payload."""
    array = np.asarray(array)
    header = bytes([0, 0, _CODES[array.dtype], array.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array, gz: bool) -> Path:
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def fake_split(n: int, seed: int):
    """Random uint8 images (n, 28, 28) and labels (n,) cycling through 0..9."""
    gen = np.random.default_rng(seed)
    return gen.integers(0, 256, size=(n, 28, 28), dtype=np.uint8), np.arange(n, dtype=np.uint8) % 10


def make_fake_set(folder: Path, n_train: int = 5, n_test: int = 3, gz: bool = True) -> Path:
    """Write the four standard files (tiny) into folder; the train split has n_train rows."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        images, labels = fake_split(n, seed=n)
        stem_x, stem_y = D.FILES[split]
        suffix = ".gz" if gz else ""
        write_idx(folder / (stem_x + suffix), images, gz)
        write_idx(folder / (stem_y + suffix), labels, gz)
    return folder


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No MINIVAE_DATA, no downloads, a private cache and home, no system folders, no network."""
    monkeypatch.delenv("MINIVAE_DATA", raising=False)
    monkeypatch.setenv("MINIVAE_OFFLINE", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(D, "SYSTEM_DIRS", {"mnist": (), "fashion-mnist": ()})

    def no_network(url, *args, **kwargs):
        raise AssertionError(f"a test tried to reach the network: {url}")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    return tmp_path


# ----------------------------------------------------------------------------- IDX reader

@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("array", [
    np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
    np.array([[-5, 70000], [3, -1]], dtype=np.int32),
    np.array([0.5, -2.25, 1e10]),
    np.array([-3, 100], dtype=np.int16),
])
def test_read_idx_round_trip(tmp_path, array, gz):
    path = write_idx(tmp_path / "a.idx", array, gz)
    back = D.read_idx(path)
    assert back.shape == array.shape
    assert back.dtype == array.dtype and back.dtype.isnative
    np.testing.assert_array_equal(back, array)
    back[...] = 0  # a writable copy, not a view of the file's bytes


def test_read_idx_tells_gzip_by_magic_not_extension(tmp_path):
    array = np.arange(10, dtype=np.uint8)
    gz_named_raw = write_idx(tmp_path / "labels.idx", array, gz=True)
    raw_named_gz = write_idx(tmp_path / "labels.gz", array, gz=False)
    np.testing.assert_array_equal(D.read_idx(gz_named_raw), array)
    np.testing.assert_array_equal(D.read_idx(raw_named_gz), array)


def test_data_error_is_a_value_error():
    assert issubclass(D.DataError, ValueError)


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_truncated_payload(tmp_path, gz):
    data = idx_bytes(np.zeros((4, 28, 28), dtype=np.uint8))[:-10]
    path = tmp_path / "short-images"
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(D.DataError, match="short-images.*truncated"):
        D.read_idx(path)


def test_read_idx_trailing_bytes(tmp_path):
    path = tmp_path / "long.idx"
    path.write_bytes(idx_bytes(np.zeros(5, dtype=np.uint8)) + b"\x00")
    with pytest.raises(D.DataError, match="long.idx.*trailing bytes"):
        D.read_idx(path)


def test_read_idx_truncated_header(tmp_path):
    path = tmp_path / "hdr.idx"
    path.write_bytes(bytes([0, 0, 8, 3]) + (5).to_bytes(4, "big"))  # 3 dims announced, 1 given
    with pytest.raises(D.DataError, match="hdr.idx.*header"):
        D.read_idx(path)


def test_read_idx_truncated_gzip_stream(tmp_path):
    compressed = gzip.compress(idx_bytes(np.arange(3000, dtype=np.int32)))
    path = tmp_path / "cut.gz"
    path.write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(D.DataError, match="cut.gz.*gzip"):
        D.read_idx(path)


def test_read_idx_corrupt_gzip_stream(tmp_path):
    compressed = bytearray(gzip.compress(idx_bytes(np.arange(3000, dtype=np.int32))))
    for i in range(20, 40):
        compressed[i] ^= 0xFF
    path = tmp_path / "bad.gz"
    path.write_bytes(bytes(compressed))
    with pytest.raises(D.DataError, match="bad.gz.*gzip"):
        D.read_idx(path)


@pytest.mark.parametrize("header", [
    b"\x01\x00\x08\x01",  # first byte not zero
    b"\x00\x00\x07\x01",  # unknown type code
    b"\x00\x00\x08\x00",  # no dimensions
    b"PK\x03\x04",        # a zip file
])
def test_read_idx_bad_magic(tmp_path, header):
    path = tmp_path / "magic.bin"
    path.write_bytes(header + (1).to_bytes(4, "big") + b"\x00")
    with pytest.raises(D.DataError, match="magic.bin.*magic number"):
        D.read_idx(path)


def test_read_idx_tiny_file(tmp_path):
    path = tmp_path / "tiny"
    path.write_bytes(b"\x00\x00")
    with pytest.raises(D.DataError, match="tiny.*too short"):
        D.read_idx(path)


def gzip_bomb(path: Path, declared: int, members: int) -> Path:
    """A gzip whose IDX header declares `declared` uint8 items, followed by 16 MiB of zeros
    per extra gzip member: a file of about 16 KB per member that unpacks to 16 MiB each."""
    zeros = gzip.compress(bytes(16 << 20))
    head = gzip.compress(idx_bytes(np.zeros(declared, dtype=np.uint8)))
    path.write_bytes(head + zeros * members)
    return path


def test_read_idx_stops_a_gzip_bomb_after_the_declared_size(tmp_path):
    """64 MiB of zeros hide behind a header of 10 items: refused, and memory stays small."""
    import tracemalloc

    path = gzip_bomb(tmp_path / "bomb-labels.gz", declared=10, members=4)
    assert path.stat().st_size < 200_000
    tracemalloc.start()
    try:
        with pytest.raises(D.DataError, match="bomb-labels.gz.*trailing bytes.*not read further"):
            D.read_idx(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, f"read_idx held {peak} bytes at once for a 10-byte payload"


def test_read_idx_reads_gzip_in_chunks_not_all_at_once(tmp_path, monkeypatch):
    """A genuine file larger than a chunk still reads whole, through several reads."""
    monkeypatch.setattr(D, "_CHUNK", 1000)
    array = np.arange(5000, dtype=np.int32)
    back = D.read_idx(write_idx(tmp_path / "big.gz", array, gz=True))
    np.testing.assert_array_equal(back, array)


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_caps_the_declared_size(tmp_path, gz):
    path = write_idx(tmp_path / "capped.idx", np.zeros(2000, dtype=np.uint8), gz)
    with pytest.raises(D.DataError, match=r"capped.idx.*2,000 bytes, more than the 1,000"):
        D.read_idx(path, max_bytes=1000)
    assert D.read_idx(path, max_bytes=2000).shape == (2000,)


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_header_that_overflows_int64(tmp_path, gz):
    """Five dimensions of 65536: 2^80 items, which wraps around in int64 arithmetic."""
    header = bytes([0, 0, 0x08, 5]) + (65536).to_bytes(4, "big") * 5
    path = tmp_path / "overflow-images"
    path.write_bytes(gzip.compress(header) if gz else header)
    with pytest.raises(D.DataError, match=r"overflow-images.*\(65536, 65536, 65536, 65536, "
                                          r"65536\).*1,208,925,819,614,629,174,706,176 bytes"):
        D.read_idx(path)


def test_lesson_fallback_survives_an_overflowing_header(tmp_path, monkeypatch, capsys):
    folder = make_fake_set(tmp_path / "data" / "mnist")
    header = bytes([0, 0, 0x08, 5]) + (65536).to_bytes(4, "big") * 5
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(header))
    monkeypatch.setenv("MINIVAE_DATA", str(tmp_path / "data"))
    ds = D.load_for_lesson("mnist", "test")
    assert ds.name == "fashion-mnist-builtin"
    assert "t10k-images-idx3-ubyte.gz" in capsys.readouterr().out


def test_read_idx_names_the_file_when_it_cannot_be_read(tmp_path):
    (tmp_path / "a-folder").mkdir()
    with pytest.raises(D.DataError, match="a-folder.*cannot be read"):
        D.read_idx(tmp_path / "a-folder")
    with pytest.raises(D.DataError, match="missing-file.*cannot be read"):
        D.read_idx(tmp_path / "missing-file")


def test_labels_and_images_of_different_counts_are_refused(tmp_path, monkeypatch):
    folder = make_fake_set(tmp_path / "data" / "mnist", n_test=3)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.arange(4, dtype=np.uint8), gz=True)
    monkeypatch.setenv("MINIVAE_DATA", str(tmp_path / "data"))
    with pytest.raises(D.DataError, match=r"t10k-labels-idx1-ubyte.gz: expected 3 labels to "
                                          r"match .*t10k-images.*got shape \(4,\)"):
        D.load_dataset("mnist", "test")


# ----------------------------------------------------------------------------- names and lookup

def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="mnist.*fashion-mnist.*shapes") as info:
        D.load_dataset("cifar10")
    assert not isinstance(info.value, D.DataError)


def test_bad_split():
    with pytest.raises(ValueError, match="split.*train.*test.*'validation'"):
        D.load_dataset("shapes", "validation")


def test_name_aliases():
    assert D.canonical_name("fashion_mnist") == "fashion-mnist"
    assert D.canonical_name("Fashion-MNIST") == "fashion-mnist"
    assert D.canonical_name("fashion_mnist_builtin") == "fashion-mnist-builtin"
    assert set(D.DATASETS) == {"mnist", "fashion-mnist", "fashion-mnist-builtin", "shapes"}


def test_dataset_info_matches_loaded_data():
    for name in ("fashion-mnist-builtin", "shapes"):
        info, ds = D.dataset_info(name), D.load_dataset(name, "test")
        assert info["x_dim"] == ds.images.shape[1] and info["n_classes"] == ds.n_classes
        assert info["image_shape"] == ds.image_shape and info["class_names"] == ds.class_names
    assert D.dataset_info("MNIST")["x_dim"] == 784 and D.dataset_info("mnist")["n_classes"] == 10


def test_lookup_order_data_then_xdg_cache_then_home_cache(tmp_path, monkeypatch):
    data_root = tmp_path / "data"
    make_fake_set(data_root / "mnist", n_train=3)
    make_fake_set(tmp_path / "xdg-cache" / "minivae" / "mnist", n_train=4, gz=False)
    make_fake_set(tmp_path / "home" / ".cache" / "minivae" / "mnist", n_train=6)

    monkeypatch.setenv("MINIVAE_DATA", str(data_root))
    ds = D.load_dataset("mnist", "train")
    assert len(ds) == 3 and ds.source == str(data_root / "mnist")

    monkeypatch.delenv("MINIVAE_DATA")
    ds = D.load_dataset("mnist", "train")
    assert len(ds) == 4 and ds.source == str(tmp_path / "xdg-cache" / "minivae" / "mnist")

    monkeypatch.delenv("XDG_CACHE_HOME")
    ds = D.load_dataset("mnist", "train")
    assert len(ds) == 6 and ds.source == str(tmp_path / "home" / ".cache" / "minivae" / "mnist")


def test_fake_set_loads_as_documented(tmp_path, monkeypatch):
    make_fake_set(tmp_path / "data" / "mnist", n_train=7, n_test=2)
    monkeypatch.setenv("MINIVAE_DATA", str(tmp_path / "data"))
    images, labels = fake_split(7, seed=7)
    ds = D.load_dataset("mnist")
    assert ds.split == "train" and ds.name == "mnist"
    assert ds.images.shape == (7, 784) and ds.images.dtype == np.float32
    np.testing.assert_allclose(ds.images * 255.0, images.reshape(7, 784), atol=1e-4)
    assert ds.labels.dtype == np.int64
    np.testing.assert_array_equal(ds.labels, labels)
    assert ds.image_shape == (28, 28) and ds.n_classes == 10 and len(ds.class_names) == 10
    assert ds.factors is None and ds.factor_names is None
    assert len(D.load_dataset("mnist", "test")) == 2


def test_fashion_system_folder_is_searched_last(tmp_path, monkeypatch):
    system = make_fake_set(tmp_path / "usr-share" / "fashion-mnist", n_train=5)
    monkeypatch.setattr(D, "SYSTEM_DIRS", {"mnist": (), "fashion-mnist": (system,)})
    ds = D.load_dataset("fashion_mnist", "train")
    assert len(ds) == 5 and ds.source == str(system) and ds.class_names[0] == "T-shirt/top"
    assert D.search_dirs("fashion-mnist")[-1] == system

    make_fake_set(tmp_path / "xdg-cache" / "minivae" / "fashion-mnist", n_train=8)
    assert len(D.load_dataset("fashion-mnist", "train")) == 8


def test_locate_reports_each_file(tmp_path, monkeypatch):
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    images, labels = fake_split(2, seed=0)
    write_idx(folder / "t10k-images-idx3-ubyte", images, gz=False)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", labels, gz=True)
    monkeypatch.setenv("MINIVAE_DATA", str(tmp_path / "data"))
    found = D.locate("mnist")
    assert found["t10k-images-idx3-ubyte"] == folder / "t10k-images-idx3-ubyte"
    assert found["t10k-labels-idx1-ubyte"] == folder / "t10k-labels-idx1-ubyte.gz"
    assert found["train-images-idx3-ubyte"] is None and found["train-labels-idx1-ubyte"] is None
    assert len(D.load_dataset("mnist", "test")) == 2
    assert D.locate("shapes") == {}
    assert list(D.locate("fashion-mnist-builtin").values()) == [D.BUILTIN_FILE]


def test_offline_message_lists_every_place(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIVAE_DATA", str(tmp_path / "data"))
    system = tmp_path / "usr-share" / "fashion-mnist"
    monkeypatch.setattr(D, "SYSTEM_DIRS", {"mnist": (), "fashion-mnist": (system,)})
    with pytest.raises(D.DataError) as info:
        D.load_dataset("fashion-mnist", "test")
    message = str(info.value)
    for place in (tmp_path / "data" / "fashion-mnist", tmp_path / "xdg-cache" / "minivae", system):
        assert str(place) in message
    for hint in ("MINIVAE_OFFLINE=1", "MINIVAE_DATA", "minivae download fashion-mnist",
                 "t10k-images-idx3-ubyte", "dataset-fashion-mnist"):
        assert hint in message


def test_wrong_image_shape_is_a_data_error(tmp_path, monkeypatch):
    folder = tmp_path / "data" / "mnist"
    make_fake_set(folder)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", np.zeros((3, 32, 32), np.uint8), gz=True)
    monkeypatch.setenv("MINIVAE_DATA", str(tmp_path / "data"))
    with pytest.raises(D.DataError, match="t10k-images.*28, 28"):
        D.load_dataset("mnist", "test")


# ----------------------------------------------------------------------------- download

class FakeResponse(io.BytesIO):
    """What urlopen returns: read(n), headers, a context manager; can break mid-stream."""

    def __init__(self, payload: bytes, length: int | None = None, break_after: int | None = None):
        super().__init__(payload)
        self.headers = {} if length is None else {"Content-Length": str(length)}
        self.break_after = break_after

    def read(self, n=-1):
        if self.break_after is not None and self.tell() >= self.break_after:
            raise ConnectionResetError("connection reset by peer")
        if self.break_after is not None:
            n = min(n if n >= 0 else self.break_after, self.break_after - self.tell())
        return super().read(n)


@pytest.fixture
def served(monkeypatch):
    """Serve fake MNIST .gz files: routes[url] = a response factory or an exception."""
    monkeypatch.setenv("MINIVAE_OFFLINE", "0")  # downloads allowed (to the fake mirrors only)
    files = {}
    for split in ("train", "test"):
        images, labels = fake_split(4 if split == "train" else 2, seed=1)
        stem_x, stem_y = D.FILES[split]
        files[stem_x] = gzip.compress(idx_bytes(images))
        files[stem_y] = gzip.compress(idx_bytes(labels))
    monkeypatch.setitem(D.SHA256, "mnist",
                        {stem: hashlib.sha256(b).hexdigest() for stem, b in files.items()})
    first, second = D.MIRRORS["mnist"]
    routes = {}
    for stem, payload in files.items():
        routes[first + stem + ".gz"] = lambda p=payload: FakeResponse(p, len(p))
        routes[second + stem + ".gz"] = lambda p=payload: FakeResponse(p, len(p))
    calls = []

    def urlopen(url, timeout=None):
        calls.append(url)
        route = routes.get(url, urllib.error.URLError("no route to host"))
        if isinstance(route, Exception):
            raise route
        return route()

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return {"files": files, "routes": routes, "calls": calls, "mirrors": (first, second)}


def cache_listing(tmp_path) -> list:
    folder = tmp_path / "xdg-cache" / "minivae" / "mnist"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_good_files(served, tmp_path):
    paths = D.download("mnist")
    folder = tmp_path / "xdg-cache" / "minivae" / "mnist"
    assert cache_listing(tmp_path) == sorted(stem + ".gz" for stem in D.ALL_FILES)
    for stem, payload in served["files"].items():
        assert paths[stem] == folder / (stem + ".gz")
        assert paths[stem].read_bytes() == payload
    assert all(url.startswith(served["mirrors"][0]) for url in served["calls"])
    served["calls"].clear()
    D.download("mnist")  # already there with the right hash: nothing fetched
    assert served["calls"] == []


def test_load_downloads_when_allowed(served, tmp_path, monkeypatch):
    monkeypatch.setenv("MINIVAE_OFFLINE", "0")
    ds = D.load_dataset("mnist", "test")
    assert len(ds) == 2 and ds.source == str(tmp_path / "xdg-cache" / "minivae" / "mnist")
    assert len(served["calls"]) == 2  # only the test split's two files


def test_download_bad_hash_is_rejected_and_leaves_nothing(served, tmp_path):
    stem = "train-labels-idx1-ubyte"
    for mirror in served["mirrors"]:
        served["routes"][mirror + stem + ".gz"] = lambda: FakeResponse(b"evil", 4)
    with pytest.raises(D.DataError, match="SHA-256") as info:
        D.download("mnist", files=[stem])
    for mirror in served["mirrors"]:
        assert mirror + stem + ".gz" in str(info.value)
    assert cache_listing(tmp_path) == []


def test_download_falls_back_to_second_mirror(served, tmp_path):
    first, second = served["mirrors"]
    for stem in D.ALL_FILES:
        served["routes"][first + stem + ".gz"] = urllib.error.URLError("name resolution failed")
    D.download("mnist")
    assert cache_listing(tmp_path) == sorted(stem + ".gz" for stem in D.ALL_FILES)
    assert [u for u in served["calls"] if u.startswith(second)] == \
        [second + stem + ".gz" for stem in D.ALL_FILES]


@pytest.mark.parametrize("how", ["reset", "short"])
def test_interrupted_download_leaves_no_file(served, tmp_path, how):
    stem = "train-images-idx3-ubyte"
    payload = served["files"][stem]
    half = len(payload) // 2

    def broken():
        if how == "reset":  # the connection drops mid-stream
            return FakeResponse(payload, len(payload), break_after=half)
        return FakeResponse(payload[:half], len(payload))  # ends early; Content-Length tells

    for mirror in served["mirrors"]:
        served["routes"][mirror + stem + ".gz"] = broken
    with pytest.raises(D.DataError, match="could not download"):
        D.download("mnist", files=[stem])
    assert cache_listing(tmp_path) == []  # no partial file, no temp file
    assert D.locate("mnist")[stem] is None


def test_interrupted_first_mirror_then_good_second(served, tmp_path):
    stem = "train-images-idx3-ubyte"
    payload = served["files"][stem]
    served["routes"][served["mirrors"][0] + stem + ".gz"] = \
        lambda: FakeResponse(payload, len(payload), break_after=10)
    paths = D.download("mnist", files=[stem])
    assert paths[stem].read_bytes() == payload
    assert cache_listing(tmp_path) == [stem + ".gz"]


def test_failed_download_message_when_loading(served, tmp_path, monkeypatch):
    monkeypatch.setenv("MINIVAE_OFFLINE", "0")
    for url in list(served["routes"]):
        served["routes"][url] = urllib.error.URLError("offline")
    with pytest.raises(D.DataError, match="download failed") as info:
        D.load_dataset("mnist", "train")
    assert "minivae download mnist" in str(info.value) and "offline" in str(info.value)


def test_download_rejects_generated_sets_and_unknown_files():
    with pytest.raises(ValueError, match="mnist, fashion-mnist"):
        D.download("shapes")
    with pytest.raises(ValueError, match="unknown file.*train-images-idx3-ubyte"):
        D.download("mnist", files=["train-images.idx3-ubyte"])


def test_download_is_refused_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIVAE_OFFLINE", "1")  # no network is touched (urlopen would fail)
    with pytest.raises(D.DataError) as info:
        D.download("fashion-mnist")
    message = str(info.value)
    for words in ("downloads are off (MINIVAE_OFFLINE=1)", "MINIVAE_DATA=<DIR>", "fashion-mnist/",
                  "fashion-mnist-builtin", "dataset-fashion-mnist", "Unset MINIVAE_OFFLINE"):
        assert words in message, words
    assert not (tmp_path / "xdg-cache" / "minivae").exists()  # no folder made either


def test_download_error_points_to_local_files_and_the_builtin_set(served, tmp_path):
    for url in list(served["routes"]):
        served["routes"][url] = urllib.error.URLError("name resolution failed")
    with pytest.raises(D.DownloadError) as info:
        D.download("mnist", files=["t10k-labels-idx1-ubyte"])
    message = str(info.value)
    for words in ("could not download t10k-labels-idx1-ubyte.gz", "name resolution failed",
                  "MINIVAE_DATA=<DIR>", "fashion-mnist-builtin"):
        assert words in message, words
    assert len(info.value.attempts) == 2 and isinstance(info.value, D.DataError)


def test_downloaded_files_have_the_usual_mode(served, tmp_path):
    import stat

    old = os.umask(0o022)
    try:
        paths = D.download("mnist", files=["t10k-labels-idx1-ubyte"])
    finally:
        os.umask(old)
    assert stat.S_IMODE(paths["t10k-labels-idx1-ubyte"].stat().st_mode) == 0o644


# ----------------------------------------------------------------------------- built-in subset

def test_builtin_subset_loads_balanced():
    assert D.BUILTIN_FILE.stat().st_size <= 5 * 1024 * 1024
    for split, per_class in (("train", 700), ("test", 200)):
        ds = D.load_dataset("fashion-mnist-builtin", split)
        assert ds.images.shape == (10 * per_class, 784) and ds.images.dtype == np.float32
        assert 0.0 <= ds.images.min() and ds.images.max() <= 1.0 and ds.images.max() > 0.9
        assert ds.labels.dtype == np.int64
        np.testing.assert_array_equal(np.bincount(ds.labels, minlength=10), [per_class] * 10)
        assert ds.class_names[9] == "Ankle boot" and ds.n_classes == 10
    licence = (D.BUILTIN_DIR / "FASHION-MNIST-LICENSE.txt").read_text()
    assert "Copyright (c) 2017 Zalando SE" in licence and "Permission is hereby granted" in licence


def test_builtin_npz_holds_plain_uint8_arrays():
    with np.load(D.BUILTIN_FILE, allow_pickle=False) as z:
        assert sorted(z.files) == ["test_images", "test_labels", "train_images", "train_labels"]
        assert all(z[k].dtype == np.uint8 for k in z.files)


def test_load_for_lesson_falls_back_with_one_line(capsys):
    ds = D.load_for_lesson("mnist", "test")
    assert ds.name == "fashion-mnist-builtin" and len(ds) == 2000
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    for words in ("mnist", "built-in", "MINIVAE_OFFLINE=1", "MINIVAE_DATA", "minivae download"):
        assert words in out


def test_load_for_lesson_real_data_or_raise(tmp_path, monkeypatch, capsys):
    with pytest.raises(D.DataError):
        D.load_for_lesson("mnist", "test", offline_ok=False)
    make_fake_set(tmp_path / "data" / "mnist", n_test=3)
    monkeypatch.setenv("MINIVAE_DATA", str(tmp_path / "data"))
    ds = D.load_for_lesson("mnist", "test")
    assert ds.name == "mnist" and len(ds) == 3
    assert capsys.readouterr().out == ""


# ----------------------------------------------------------------------------- shapes

def test_shapes_deterministic_and_seeded():
    a, b, c = D.make_shapes(50, seed=3), D.make_shapes(50, seed=3), D.make_shapes(50, seed=4)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.factors, b.factors)
    assert not np.array_equal(a.factors, c.factors)
    assert not np.array_equal(a.images, c.images)


def test_shapes_fields_and_ranges():
    ds = D.make_shapes(2000, seed=0, size=32)
    assert ds.images.shape == (2000, 32 * 32) and ds.images.dtype == np.float32
    assert set(np.unique(ds.images)) == {0.0, 1.0}
    assert ds.factors.shape == (2000, 5) and ds.factors.dtype == np.int64
    assert ds.factor_names == ("shape", "scale", "orientation", "pos_x", "pos_y")
    assert ds.factor_sizes == (3, 6, 10, 16, 16)
    for j, size in enumerate(ds.factor_sizes):
        assert ds.factors[:, j].min() == 0 and ds.factors[:, j].max() == size - 1
    np.testing.assert_array_equal(ds.labels, ds.factors[:, 0])
    assert ds.image_shape == (32, 32) and ds.n_classes == 3
    assert ds.class_names == ("square", "ellipse", "heart")
    areas = ds.images.sum(axis=1)
    assert areas.min() > 5  # every shape visible
    border = ds.images.reshape(-1, 32, 32)
    assert border[:, 0].sum() + border[:, -1].sum() + border[:, :, 0].sum() \
        + border[:, :, -1].sum() == 0  # and inside the frame


def centroid(image, size=32):
    """(row, column) centre of mass of one flat image."""
    grid = image.reshape(size, size)
    rows, cols = np.nonzero(grid)
    return rows.mean(), cols.mean()


def test_each_factor_changes_the_image():
    base = np.array([1, 3, 4, 7, 7])
    image = D.render_shapes(base[None])[0]
    for j in range(5):
        changed = base.copy()
        changed[j] += 1
        assert not np.array_equal(D.render_shapes(changed[None])[0], image), D.FACTOR_NAMES[j]


def test_position_moves_centroid_and_scale_grows_area():
    sweep_x = np.array([[0, 2, 0, x, 8] for x in range(16)])
    cols = [centroid(im)[1] for im in D.render_shapes(sweep_x)]
    assert np.all(np.diff(cols) > 0)  # pos_x moves the shape right
    sweep_y = np.array([[1, 2, 0, 8, y] for y in range(16)])
    rows = [centroid(im)[0] for im in D.render_shapes(sweep_y)]
    assert np.all(np.diff(rows) > 0)  # pos_y moves it down the rows
    sweep_s = np.array([[2, s, 3, 8, 8] for s in range(6)])
    assert np.all(np.diff(D.render_shapes(sweep_s).sum(axis=1)) > 0)


def test_heart_is_not_symmetric_under_half_turn_but_ellipse_is():
    def half_turn_difference(shape):
        f = np.array([[shape, 5, k, 8, 8] for k in (0, 5)])  # 0 and 180 degrees
        a, b = D.render_shapes(f)
        return np.abs(a - b).sum() / a.sum()

    assert half_turn_difference(2) > 0.2
    assert half_turn_difference(1) < 0.05
    assert half_turn_difference(0) < 0.05


def test_render_shapes_rejects_bad_factors():
    with pytest.raises(ValueError, match="orientation.*0..9"):
        D.render_shapes(np.array([[0, 0, 10, 0, 0]]))
    with pytest.raises(ValueError, match=r"\(N, 5\)"):
        D.render_shapes(np.zeros((3, 4), dtype=int))


def test_shapes_splits_from_load_dataset():
    test = D.load_dataset("shapes", "test")
    assert test.split == "test" and len(test) == D.SHAPES_SPLITS["test"][0]
    again = D.load_dataset("shapes", "test")
    np.testing.assert_array_equal(test.factors, again.factors)
    first_train = D.make_shapes(len(test), seed=D.SHAPES_SPLITS["train"][1])
    assert not np.array_equal(first_train.factors, test.factors)


# ----------------------------------------------------------------------------- preprocessing

def test_binarize_is_a_bernoulli_draw():
    rng = np.random.default_rng(0)
    p = np.tile(np.linspace(0.0, 1.0, 11, dtype=np.float32), (20000, 1))  # (20000, 11)
    x = D.binarize(p, rng)
    assert x.dtype == np.float32 and set(np.unique(x)) == {0.0, 1.0}
    np.testing.assert_allclose(x.mean(axis=0), p[0], atol=0.015)
    assert x[:, 0].max() == 0.0 and x[:, -1].min() == 1.0
    assert not np.array_equal(D.binarize(p, rng), x)  # dynamic: a new draw each call


def test_binarize_rejects_non_intensities():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        D.binarize(np.array([0.5, 255.0]), np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"NaN among them"):  # min and max are NaN: no range
        D.binarize(np.array([0.5, np.nan]), np.random.default_rng(0))
    with pytest.raises(ValueError, match="no images to binarize"):
        D.binarize_fixed(np.zeros((0, 4)))


def test_binarize_fixed_is_reproducible():
    p = np.full((100, 50), 0.5, dtype=np.float32)
    a, b, c = D.binarize_fixed(p, seed=1), D.binarize_fixed(p, seed=1), D.binarize_fixed(p, seed=2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert abs(a.mean() - 0.5) < 0.03


def small_dataset(n=30):
    images, labels = fake_split(n, seed=0)
    return D.Dataset(images=images.reshape(n, -1).astype(np.float32) / 255, labels=labels.astype(
        np.int64), name="mnist", split="train", factors=np.arange(n)[:, None])


def test_train_val_split():
    ds = small_dataset(30)
    train, val = D.train_val_split(ds, 10, seed=0)
    assert (len(train), len(val)) == (20, 10) and (train.split, val.split) == ("train", "val")
    both = np.concatenate([train.factors[:, 0], val.factors[:, 0]])
    np.testing.assert_array_equal(np.sort(both), np.arange(30))  # disjoint and complete
    np.testing.assert_array_equal(val.images, ds.images[val.factors[:, 0]])  # rows stay aligned
    _, val2 = D.train_val_split(ds, 10, seed=1)
    assert not np.array_equal(val.factors, val2.factors)
    for bad in (0, 30, -1):
        with pytest.raises(ValueError, match="n_val must be in 1..29"):
            D.train_val_split(ds, bad)


def test_labelled_subset_balanced_and_seeded():
    labels = np.repeat(np.arange(10), 50)[np.random.default_rng(0).permutation(500)]
    index = D.labelled_subset(labels, 100, seed=0)
    assert index.dtype == np.int64 and len(np.unique(index)) == 100
    np.testing.assert_array_equal(np.bincount(labels[index], minlength=10), [10] * 10)
    assert not np.array_equal(index, D.labelled_subset(labels, 100, seed=1))
    np.testing.assert_array_equal(index, D.labelled_subset(labels, 100, seed=0))
    with pytest.raises(ValueError, match="multiple of n_classes=10"):
        D.labelled_subset(labels, 105, seed=0)
    with pytest.raises(ValueError, match="class 0 has 50 examples, fewer than the 60"):
        D.labelled_subset(labels, 600, seed=0)


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("shuffle", [False, True])
def test_batches_cover_every_example_once(shuffle, drop_last):
    x = np.arange(23 * 2, dtype=np.float64).reshape(23, 2)  # row i holds 2i, 2i+1
    y = np.arange(23, dtype=np.uint8)
    seen = []
    for xb, yb in D.batches(x, 5, y, rng=np.random.default_rng(0), shuffle=shuffle,
                            drop_last=drop_last):
        xb, yb = B.to_numpy(xb), B.to_numpy(yb)
        assert xb.dtype == B.get_default_dtype() and yb.dtype == np.int64
        np.testing.assert_array_equal(xb[:, 0], 2 * yb)  # extras stay aligned with x
        assert len(xb) == 5 or not drop_last
        seen.extend(yb.tolist())
    expected = 20 if drop_last else 23
    assert len(seen) == expected and len(set(seen)) == expected
    assert (seen != sorted(seen)) == shuffle


def test_batches_alone_and_default_dtype():
    x = np.linspace(0, 1, 12).reshape(6, 2)  # float64 on the host
    batch = next(D.batches(x, 4, shuffle=False))
    assert B.is_array(batch) and batch.shape == (4, 2) and batch.dtype == np.float32
    with B.set_default_dtype("float64"):
        assert next(D.batches(x, 4, shuffle=False)).dtype == np.float64


def test_batches_bad_arguments():
    x = np.zeros((10, 3))
    for bad in (0, -2, 2.5):
        with pytest.raises(ValueError, match="batch_size must be a positive integer"):
            D.batches(x, bad)  # raised at the call, not at the first next()
    with pytest.raises(ValueError, match="extra array 0 has 9 rows but x has 10"):
        D.batches(x, 2, np.zeros(9))


def test_data_module_does_not_import_numpy():
    source = Path(D.__file__).read_text()
    assert "import numpy" not in source and "import cupy" not in source


# ----------------------------------------------------------------------------- real data

def real_mnist_root():
    """The folder holding mnist/: MINIVAE_DATA, else ../shared/data beside the project."""
    candidates = [Path(REAL_MINIVAE_DATA)] if REAL_MINIVAE_DATA else []
    candidates.append(Path(__file__).resolve().parents[2] / "shared" / "data")
    for root in candidates:
        if all(D._find(root / "mnist", stem) for stem in D.ALL_FILES):
            return root
    return None


@pytest.mark.mnist
def test_real_mnist(monkeypatch):
    root = real_mnist_root()
    if root is None:
        pytest.skip("MNIST files not found: set MINIVAE_DATA to the folder holding mnist/ "
                    "(the four official .gz files)")
    monkeypatch.setenv("MINIVAE_DATA", str(root))
    train, test = D.load_dataset("mnist", "train"), D.load_dataset("mnist", "test")
    assert train.images.shape == (60000, 784) and test.images.shape == (10000, 784)
    for ds in (train, test):
        assert ds.images.dtype == np.float32 and ds.images.min() == 0.0 and ds.images.max() == 1.0
        np.testing.assert_array_equal(np.unique(ds.labels), np.arange(10))
    assert train.labels[:5].tolist() == [5, 0, 4, 1, 9]  # the well-known first training labels
    assert test.labels[:5].tolist() == [7, 2, 1, 0, 4]


def test_real_fashion_mnist_from_debian(monkeypatch):
    system = REAL_SYSTEM_DIRS["fashion-mnist"]
    if not any(D._find(d, "t10k-images-idx3-ubyte") for d in system):
        pytest.skip("Debian's dataset-fashion-mnist is not installed (apt-get install "
                    "dataset-fashion-mnist)")
    monkeypatch.setattr(D, "SYSTEM_DIRS", REAL_SYSTEM_DIRS)
    ds = D.load_dataset("fashion-mnist", "test")
    assert ds.images.shape == (10000, 784) and ds.images.max() == 1.0
    np.testing.assert_array_equal(np.bincount(ds.labels), [1000] * 10)
    builtin = D.load_dataset("fashion-mnist-builtin", "test")
    first = np.flatnonzero(ds.labels == 0)[:200]  # the built-in test part: first 200 per class
    np.testing.assert_array_equal(builtin.images[builtin.labels == 0], ds.images[first])
