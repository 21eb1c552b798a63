"""Write-to-temp-then-rename, so that no reader ever sees a half-written file."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Collection, Iterator


DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


@contextlib.contextmanager
def _disk_space(path: Path) -> Iterator[None]:
    """Turn a full disk (or quota, or file size limit) while writing the temporary copy of
    `path` into an error that names `path` and says what to do."""
    try:
        yield
    except OSError as err:
        if err.errno not in DISK_FULL:
            raise
        full = OSError(f"{path}: cannot write it: {os.strerror(err.errno)}. Fix: free space "
                       f"on the disk of {path.parent}, or write somewhere else (--output)")
        full.errno = err.errno
        raise full from err


@contextlib.contextmanager
def _writable(path: Path) -> Iterator[None]:
    """Turn an OS error while creating or renaming a temporary file into one that names `path`
    (not the temporary name) and says what to do."""
    try:
        yield
    except OSError as err:
        raise OSError(f"{path}: cannot write it ({err.strerror or err}). Fix: choose a location "
                      "you can write to") from err


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    with _writable(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        with _disk_space(path):
            yield tmp_path
        if tmp_path.exists():
            _plain_permissions(tmp_path)
        with _writable(path):   # e.g. `path` is a directory
            os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def check_replaceable(path: str | Path, marker: str, others: Collection[str] = ()) -> None:
    """Refuse to replace a directory unless it is empty or an earlier result of ours: it holds
    `marker` and nothing but `marker` and `others`. Replacing anything else would delete the
    user's files."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path}: exists and is not a directory. Fix: choose a new "
                              "directory name")
    if not path.is_dir() or not any(path.iterdir()):
        return
    if not (path / marker).is_file():
        raise FileExistsError(f"{path}: the directory is not empty and holds no {marker}, so it "
                              "was not written by disco-ray; writing there would delete its "
                              "files. Fix: choose a new or empty directory")
    foreign = sorted(p.name for p in path.iterdir() if p.name not in {marker, *others})
    if foreign:
        raise FileExistsError(f"{path}: holds {', '.join(foreign)} besides an earlier result; "
                              "replacing the directory would delete them. Fix: move them out "
                              "or choose a new directory")


@contextlib.contextmanager
def atomic_directory(path: str | Path, marker: str,
                     others: Collection[str] = ()) -> Iterator[Path]:
    """Yield a temporary directory next to `path`; it replaces `path` only if the block
    succeeds. An existing `path` is replaced only if it is empty or an earlier result
    (`check_replaceable`), and is moved aside before the new one is renamed in, so that an
    interruption leaves one whole result at `path` (or, between the two renames, the old one
    beside it) and never a half-deleted one."""
    path = Path(path).resolve()
    check_replaceable(path, marker, others)
    with _writable(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        with _disk_space(path):
            yield tmp
        _plain_permissions(tmp)
        check_replaceable(path, marker, others)   # the block may have run for minutes
        _swap_in(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _swap_in(new: Path, path: Path) -> None:
    """Rename `new` onto `path`; an existing `path` is renamed aside first and deleted last."""
    if not path.exists():
        with _writable(path):
            new.rename(path)
        return
    old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.old."))
    try:
        with _writable(path):
            path.replace(old)   # onto the empty directory just made: one rename, no copy
    except BaseException:
        old.rmdir()
        raise
    try:
        new.rename(path)
    except BaseException:
        old.rename(path)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _plain_permissions(path: Path) -> None:
    """Give a `tempfile` file (0600) or directory (0700) the permissions `open` or `mkdir` would
    have given it under the process's umask, so that results on a shared disk stay readable."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~umask)
