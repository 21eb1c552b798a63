"""Write-to-temp-then-rename, so that no reader ever sees a half-written file."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


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
        yield tmp_path
        if tmp_path.exists():
            _plain_permissions(tmp_path)
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def check_replaceable(path: str | Path, marker: str) -> None:
    """Refuse a directory that holds anything but an earlier result of ours (one with `marker`
    in it): replacing it would delete the user's files."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path}: exists and is not a directory. Fix: choose a new "
                              "directory name")
    if path.is_dir() and any(path.iterdir()) and not (path / marker).is_file():
        raise FileExistsError(f"{path}: the directory is not empty and holds no {marker}, so it "
                              "was not written by disco-ray; writing there would delete its "
                              "files. Fix: choose a new or empty directory")


@contextlib.contextmanager
def atomic_directory(path: str | Path, marker: str) -> Iterator[Path]:
    """Yield a temporary directory next to `path`; it replaces `path` only if the block
    succeeds. An existing `path` is replaced only if it is empty or an earlier result (it holds
    `marker`): `check_replaceable`."""
    path = Path(path).resolve()
    check_replaceable(path, marker)
    with _writable(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        yield tmp
        _plain_permissions(tmp)
        check_replaceable(path, marker)   # the block may have run for minutes
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _plain_permissions(path: Path) -> None:
    """Give a `tempfile` file (0600) or directory (0700) the permissions `open` or `mkdir` would
    have given it under the process's umask, so that results on a shared disk stay readable."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~umask)
