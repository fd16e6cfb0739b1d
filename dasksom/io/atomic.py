"""Atomic outputs: every file or store dasksom writes appears whole or not at all.

Each output is written under a fresh temporary name in its own folder, created exclusively (so
a name planted there in advance, a symlink for instance, is never followed or overwritten), and
renamed over the final name once complete.  An interrupted write leaves the old output as it
was, and no half-written one.  The finished output gets the mode the process's umask gives a
new file or folder (``0o644`` and ``0o755`` under the usual ``022``), not the private mode of a
temporary one, so that a shared results folder or a web server can read it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

_URL_SCHEMES = ("s3://", "gs://", "gcs://", "abfs://", "az://", "http://", "https://", "hdfs://")
_PROC_STATUS = Path("/proc/self/status")


def current_umask() -> int:
    """The process's umask, read without changing it where Linux shows it (``/proc``); other
    systems set and restore it at once."""
    with contextlib.suppress(OSError):
        for line in _PROC_STATUS.read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _publish(tmp: Path, target: Path, mode: int) -> None:
    """Give ``tmp`` the mode the umask gives new files (``mode & ~umask``), then rename it to
    ``target``."""
    os.chmod(tmp, mode & ~current_umask())
    os.replace(tmp, target)


def local_path(path: str | os.PathLike, what: str = "output") -> Path:
    """``path`` as a local ``Path``, refusing URLs, which a local write would mistake for
    folders (``s3://b/x`` would become a folder named ``s3:``)."""
    text = os.fspath(path)
    if "://" in text and not text.startswith("file://"):
        scheme = text.split("://", 1)[0]
        raise ValueError(
            f"Cannot write the {what} to {text!r}: dasksom writes maps, checkpoints and plots "
            f"to local (or mounted shared) paths only, not to {scheme}:// URLs. Write to a "
            "local or mounted folder and copy the result afterwards."
        )
    return Path(text.removeprefix("file://"))


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a fresh temporary file next to ``path``; rename it to ``path`` on success.

    ``suffix`` ends the temporary name, for writers that insist on one (``np.savez`` appends
    ``.npz`` to names without it).  The temporary file is removed if the body raises.
    """
    target = local_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=f".tmp{suffix}", dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        _publish(tmp, target, 0o666)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary folder next to ``path``; rename it to ``path`` on success.

    An existing folder at ``path`` is replaced only once the new one is complete.  On failure
    (an interrupt included) the partial folder is removed and the error raised again.
    """
    target = local_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.exists():
            old = Path(
                tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent)
            )
            os.replace(target, old / "store")
            _publish(tmp, target, 0o777)
            shutil.rmtree(old, ignore_errors=True)
            return
        _publish(tmp, target, 0o777)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_file`)."""
    with atomic_file(path) as tmp:
        tmp.write_text(text)
    return local_path(path)
