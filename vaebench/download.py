"""Downloads into the data cache, through pooch.

``pooch.retrieve`` streams the file into a temporary file in the cache folder and moves it into
place; the caller's ``verify`` then decodes it and checks the SHA-256 of the decoded array, and a
file that fails is removed. (No file digest is given to pooch: MNIST mirrors may compress the
IDX files differently, and the recorded Frey Face file digest is that of a rewritten copy.) A
failed download (HTTP error, refused connection, timeout, truncated body, bytes that fail
verification) leaves nothing behind and raises one ``DataError`` naming the URL.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pooch
import requests
import urllib3

from vaebench.errors import DataError
from vaebench.fileio import _file_mode

DOWNLOAD_TIMEOUT = 30.0  # seconds without progress before a connection is given up
USER_AGENT = "vaebench (https://pypi.org/project/vaebench)"

T = TypeVar("T")


def _reason(exc: BaseException) -> str:
    """A short, one-line description of why a request failed."""
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code} {exc.response.reason}"
    while (exc.__cause__ or exc.__context__) is not None:  # the root cause, e.g. ConnectionRefusedError
        exc = exc.__cause__ or exc.__context__
    if isinstance(exc, urllib3.exceptions.IncompleteRead):  # fewer bytes than Content-Length
        return f"truncated body, got {exc.partial} of {exc.partial + exc.expected} bytes"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextlib.contextmanager
def _quiet_pooch():
    """Keep pooch's INFO lines ("Downloading data from ...", the file's SHA-256) off the CLI's stderr."""
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def download_file(url: str, dest: str | Path, verify: Callable[[Path, str], T], timeout: float = DOWNLOAD_TIMEOUT) -> T:
    """Download ``url`` to the absent file ``dest`` and return ``verify(dest, url)``.

    ``verify`` raises DataError for bad bytes and returns what it decoded. On any failure neither
    ``dest`` nor pooch's temporary file is left. A tqdm progress bar is shown when stderr is a terminal.
    """
    dest = Path(dest)
    downloader = None  # ftp://, sftp://, doi: pooch picks the downloader
    if url.startswith(("http://", "https://")):
        downloader = pooch.HTTPDownloader(
            progressbar=sys.stderr.isatty(), timeout=timeout, headers={"User-Agent": USER_AGENT}
        )
    try:
        with _quiet_pooch():
            pooch.retrieve(
                url,
                known_hash=None,
                fname=dest.name,
                path=dest.parent,
                downloader=downloader,
                progressbar=sys.stderr.isatty(),
            )
        os.chmod(dest, _file_mode())  # the temporary file was made 0600
        return verify(dest, url)
    except BaseException as exc:
        dest.unlink(missing_ok=True)
        if isinstance(exc, (OSError, ValueError)):  # requests' errors are OSErrors
            raise DataError(f"download of {url} failed: {_reason(exc)}") from None
        raise
