"""Paths of checkpoints: local globs and object-storage URIs."""

from __future__ import annotations

import fnmatch
import glob as globlib


def basename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def list_paths(pattern: str) -> list[str]:
    """Sorted paths matching `pattern`: a local glob, or a URI (`s3://`, `gs://`, `file://`)
    whose last component holds the wildcards, listed with pyarrow.fs (imported lazily)."""
    if "://" not in pattern:
        return sorted(globlib.glob(pattern))
    from pyarrow import fs

    parent, _, name_pattern = pattern.rstrip("/").rpartition("/")
    filesystem, base = fs.FileSystem.from_uri(parent)
    infos = filesystem.get_file_info(fs.FileSelector(base, allow_not_found=True))
    names = sorted(basename(info.path) for info in infos)
    return [f"{parent}/{name}" for name in names if fnmatch.fnmatchcase(name, name_pattern)]
