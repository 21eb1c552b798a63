"""Checkpoints on object storage (`s3://`, `gs://`, any URI pyarrow.fs reads) copied to the
node's local disk for the time it takes to load them.

Every backend loads from a local path or a Hugging Face id. A `path` that is a URI is copied
(file or directory, with `pyarrow.fs.copy_files`) into a fresh directory under the staging root
(option `stage_dir`, else $DISCO_RAY_STAGE_DIR, else the system's temp directory) on the node
that hosts the model's actor, loaded from there, and deleted once loaded: weights then live in
the backend's memory, so a node that evaluates checkpoint after checkpoint does not fill its
disk. A backend that reads URIs itself (vLLM with `load_format: runai_streamer`) can opt out
with the option `stage: false`. A copy is removed by the loading process; one killed while
loading (out of memory, a preempted node) leaves its `disco_ray-<model>-*` directory behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Iterator

from disco_ray.backends.base import ModelSpec

STAGE_ENV = "DISCO_RAY_STAGE_DIR"


def is_uri(path: str) -> bool:
    """Whether `path` names object storage (`scheme://...`) rather than a local path or HF id."""
    return re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", path) is not None


@contextlib.contextmanager
def local_checkpoint(spec: ModelSpec) -> Iterator[ModelSpec]:
    """`spec` with its URI `path` replaced by a local copy, removed when the block ends (a local
    path, a Hugging Face id, or `stage: false` pass through unchanged)."""
    if not is_uri(spec.path) or not spec.options.get("stage", True):
        yield spec
        return
    root = Path(spec.options.get("stage_dir") or os.environ.get(STAGE_ENV)
                or tempfile.gettempdir()).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    local = Path(tempfile.mkdtemp(prefix=f"disco_ray-{file_safe(spec.name)[:64]}-", dir=root))
    try:
        yield replace(spec, path=str(_copy(spec, local)))
    finally:
        shutil.rmtree(local, ignore_errors=True)


def _copy(spec: ModelSpec, local: Path) -> Path:
    """Copy the file or directory at `spec.path` into `local`; the local path to load."""
    from pyarrow import fs

    try:
        source, path = fs.FileSystem.from_uri(spec.path)
        kind = source.get_file_info(path).type
    except (OSError, ValueError) as err:   # unknown scheme, no credentials, unreachable
        raise OSError(f"model '{spec.name}': field 'path': cannot read {spec.path} ({err}). "
                      "Fix: check the URI and this node's credentials for it") from err
    if kind == fs.FileType.NotFound:
        raise FileNotFoundError(f"model '{spec.name}': field 'path': {spec.path} does not exist. "
                                "Fix: point at a checkpoint directory (or file) that exists")
    target = local / Path(path).name if kind == fs.FileType.File else local
    fs.copy_files(path, str(target), source_filesystem=source,
                  destination_filesystem=fs.LocalFileSystem())
    return target


def file_safe(name: str) -> str:
    """`name` usable in a file or directory name: other characters than letters, digits, `.`,
    `_` and `-` become `_`."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)
