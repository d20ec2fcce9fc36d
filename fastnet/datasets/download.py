"""Downloading dataset files: mirrors tried in turn, MD5-checked, written atomically.

A file reaches its final name only after its checksum matched, so an interrupted, truncated or
tampered download never leaves a file that a later run would trust.  Only the standard library
is used for the network; tqdm is imported when a download starts.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from fastnet.atomic import atomic_write
from fastnet.datasets.deadline import Deadline
from fastnet.errors import DataError

DEFAULT_TIMEOUT = 30.0  # seconds a connection may stay silent before the next mirror is tried
DEFAULT_DEADLINE = 900.0  # seconds one mirror may take for one whole file, however it trickles
CHUNK = 1 << 16
MAX_BYTES = 256 << 20  # far above any dataset file here; stops a mirror that streams forever


class _MirrorFailed(Exception):
    """One mirror could not deliver the file; the message says why, in a few words."""


def download_file(
    filename,
    directory,
    mirrors,
    md5,
    timeout=DEFAULT_TIMEOUT,
    progress=True,
    max_bytes=MAX_BYTES,
    deadline=DEFAULT_DEADLINE,
) -> Path:
    """Fetch ``filename`` from the first of ``mirrors`` (base URLs) that delivers it with ``md5``.

    Each mirror gets ``timeout`` seconds of silence at most, and ``deadline`` seconds for the
    whole file (connection, redirects and data).  The file lands at ``directory/filename``,
    replacing any file there.  Raises DataError listing each mirror's failure, in one line,
    when none succeeds.
    """
    dest = Path(directory) / filename
    failures = []
    for base in mirrors:
        base = base if base.endswith("/") else base + "/"
        try:
            with Deadline(deadline) as limit:
                try:
                    _fetch(base + filename, dest, md5, timeout, progress, max_bytes, limit)
                except _MirrorFailed:
                    if limit.expired:  # what a cut connection looked like is beside the point
                        raise _MirrorFailed(f"did not deliver it within {deadline:g} s") from None
                    raise
            return dest
        except _MirrorFailed as exc:
            failures.append(f"{base}: {exc}")
    tried = "; ".join(failures) if failures else "no mirrors given"
    raise DataError(
        f"could not download {filename} ({tried}); check the internet connection, "
        f"or copy the file into {Path(directory)} yourself"
    )


def _fetch(url, dest, md5, timeout, progress, max_bytes, limit):
    response = _open(url, timeout, limit)
    with response:
        declared = response.headers.get("Content-Length")
        total = int(declared) if declared and declared.isdigit() else None
        if total is not None and total > max_bytes:
            raise _MirrorFailed(f"offers {total:,} bytes, more than the {max_bytes:,} expected at most")

        def write(f):
            digest, received = hashlib.md5(), 0
            with _progress_bar(dest.name, total, progress) as bar:
                while True:
                    try:
                        chunk = response.read(CHUNK)
                    except Exception as exc:  # noqa: BLE001 - any read failure means: next mirror
                        raise _MirrorFailed(_why(exc, timeout)) from None
                    if not chunk:
                        break
                    f.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
                    if received > max_bytes:
                        raise _MirrorFailed(f"sent more than {max_bytes:,} bytes")
            if total is not None and received != total:
                raise _MirrorFailed(f"sent {received:,} of {total:,} bytes")
            if digest.hexdigest() != md5:
                raise _MirrorFailed(f"sent a file with the wrong MD5 {digest.hexdigest()}")

        atomic_write(dest, write)


def _open(url, timeout, limit):
    import urllib.error
    import urllib.request

    try:
        return limit.opener().open(url, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if urllib.request.HTTPRedirectHandler.inf_msg in str(exc.reason):
            raise _MirrorFailed(f"redirects in a loop (HTTP {exc.code})") from None
        refused = re.search(r"Redirection to url '([A-Za-z][A-Za-z0-9+.-]*):", str(exc.reason))
        if refused:  # urllib's own refusal of a scheme such as file://
            raise _MirrorFailed(_not_http(refused.group(1))) from None
        raise _MirrorFailed(f"HTTP {exc.code} {_first_line(exc.reason)}") from None
    except Exception as exc:  # noqa: BLE001 - URLError, timeouts, bad URLs: all mean next mirror
        scheme = str(getattr(exc, "reason", "")).partition("unknown url type: ")[2]
        if scheme:
            raise _MirrorFailed(_not_http(scheme)) from None
        raise _MirrorFailed(_why(exc, timeout)) from None


def _not_http(scheme):
    return f"redirects to {scheme}://, which fastnet does not download from (HTTP and HTTPS only)"


def _why(exc, timeout):
    reason = getattr(exc, "reason", None)
    cause = reason if isinstance(reason, BaseException) else exc
    if isinstance(cause, TimeoutError):
        return f"timed out after {timeout:g} s"
    return _first_line(reason if reason is not None else exc) or type(exc).__name__


def _first_line(text):
    lines = str(text).strip().splitlines()
    return lines[0] if lines else ""


def _progress_bar(name, total, enabled):
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        desc=name,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        disable=None if enabled else True,
        leave=False,
    )


def md5_of_file(path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
