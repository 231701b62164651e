"""Downloads into the data cache: fetch to a temporary file beside the target, verify, then rename.

A failed download (HTTP error, refused connection, timeout, truncated body, bytes that fail
verification) leaves nothing behind and raises one ``DataError`` naming the URL and the reason.
"""

from __future__ import annotations

import http.client
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, TypeVar

from vaebench.errors import DataError
from vaebench.fileio import atomic_path

DOWNLOAD_TIMEOUT = 30.0  # seconds without progress before a connection is given up
CHUNK_BYTES = 1 << 16
USER_AGENT = "vaebench (https://pypi.org/project/vaebench)"

T = TypeVar("T")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _reason(exc: BaseException) -> str:
    """A short, one-line description of why a request failed."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return _one_line(exc.reason)
    text = _one_line(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _progress(total: int | None, desc: str):
    """A tqdm byte counter, shown only when the size is known and stderr is a terminal."""
    from tqdm import tqdm

    show = bool(total) and sys.stderr.isatty()
    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
                leave=False, disable=not show, file=sys.stderr)


def fetch(url: str, dest: Path, timeout: float = DOWNLOAD_TIMEOUT) -> int:
    """Stream ``url`` into the file ``dest``; return the byte count. A short body raises DataError."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    opener = urllib.request.build_opener()  # reads the proxy settings of this moment
    with opener.open(request, timeout=timeout) as response, open(dest, "wb") as out:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.strip().isdigit() else None
        received = 0
        with _progress(total, url.rsplit("/", 1)[-1] or url) as bar:
            while chunk := response.read(CHUNK_BYTES):
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if total is not None and received != total:
        raise DataError(f"download of {url} failed: truncated body, got {received} of {total} bytes")
    return received


def download_file(url: str, dest: str | Path, verify: Callable[[Path, str], T],
                  timeout: float = DOWNLOAD_TIMEOUT) -> T:
    """Download ``url`` to ``dest``: temporary file, ``verify(tmp, url)``, then ``os.replace``.

    ``verify`` raises DataError for bad bytes and returns what it decoded, which is returned.
    On any failure no file (neither ``dest`` nor the temporary one) is left.
    """
    dest = Path(dest)
    try:
        with atomic_path(dest) as tmp:
            fetch(url, tmp, timeout)
            return verify(tmp, url)
    except DataError:
        raise
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise DataError(f"download of {url} failed: {_reason(exc)}") from None
