"""One run at a time per output directory: an exclusive lock on `<directory>/.disco-ray.lock`.

The lock is an `fcntl.flock` on that file, which holds the pid of the run that holds it. The
operating system releases the lock when the process ends, however it ends; a run that ends
normally also removes the file (and the directory, if the lock made it and nothing else was
written there).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from pathlib import Path
from typing import Iterator

LOCK_FILE = ".disco-ray.lock"


class DirectoryInUse(RuntimeError):
    """Another process holds the output directory's lock."""


@contextlib.contextmanager
def directory_lock(directory: Path) -> Iterator[None]:
    """Hold the lock of `directory` (created if missing) for the block, or raise
    `DirectoryInUse` naming the pid that holds it."""
    if directory.exists() and not directory.is_dir():
        raise FileExistsError(f"{directory}: exists and is not a directory. Fix: choose a new "
                              "directory name (or give --output)")
    made = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_FILE
    fd = _locked(path, directory)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        path.unlink(missing_ok=True)   # before the lock goes: a waiting run sees a new file
        os.close(fd)
        if made and not any(directory.iterdir()):
            directory.rmdir()


def _locked(path: Path, directory: Path) -> int:
    """A descriptor of `path` holding its lock (retried if the file was removed meanwhile)."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            if err.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                raise
            raise DirectoryInUse(f"{directory}: in use by pid {holder} (another disco-ray run "
                                 "writes there). Fix: wait for it to finish, or give another "
                                 "--output") from None
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        os.close(fd)   # the holder removed the file as we opened it: take the new one
