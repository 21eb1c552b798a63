"""Checkpoints on object storage (`s3://`, `gs://`, any URI pyarrow.fs reads) copied to the
node's local disk for the time it takes to load them.

Every backend loads from a local path or a Hugging Face id. A `path` that is a URI is copied
(file or directory, with `pyarrow.fs.copy_files`) into a fresh directory under the staging root
(option `stage_dir`, else $DISCO_RAY_STAGE_DIR, else the system's temp directory) on the node
that hosts the model's actor, loaded from there, and deleted once loaded: weights then live in
the backend's memory, so a node that evaluates checkpoint after checkpoint does not fill its
disk. A backend that reads URIs itself (vLLM with `load_format: runai_streamer`) can opt out
with the option `stage: false`. A copy is removed by the loading process. A process killed
while loading (out of memory, an actor restart) cannot remove its copy, so each copy records
its host and process id (`owner.json`) and the next staging on that host deletes the copies
whose process is gone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import socket
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Iterator

from disco_ray.backends.base import ModelSpec

STAGE_ENV = "DISCO_RAY_STAGE_DIR"
OWNER = "owner.json"
PREFIX = "disco_ray-"

log = logging.getLogger(__name__)


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
    remove_abandoned(root)
    local = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{file_safe(spec.name)[:64]}-", dir=root))
    try:
        (local / OWNER).write_text(json.dumps({"host": socket.gethostname(),
                                               "pid": os.getpid()}))
        yield replace(spec, path=str(_copy(spec, local)))
    finally:
        shutil.rmtree(local, ignore_errors=True)


def remove_abandoned(root: Path) -> list[Path]:
    """Delete the staged copies under `root` whose process on this host is gone; the deleted.

    A directory without a readable `owner.json` (not a copy, or one being created) is kept, and
    so is a copy made on another host (a staging root on a shared disk)."""
    removed = []
    for folder in sorted(root.glob(f"{PREFIX}*")):
        try:
            owner = json.loads((folder / OWNER).read_text())
        except (OSError, ValueError):
            continue
        if (isinstance(owner, dict) and owner.get("host") == socket.gethostname()
                and not _running(owner.get("pid"))):
            shutil.rmtree(folder, ignore_errors=True)
            log.warning("removed %s: a staged checkpoint whose process (pid %s) died while "
                        "loading it", folder, owner["pid"])
            removed.append(folder)
    return removed


def _running(pid: object) -> bool:
    """Whether process `pid` exists on this host (an unreadable pid counts as running)."""
    if not isinstance(pid, int) or pid <= 0:
        return True
    try:
        os.kill(pid, 0)   # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:   # exists, owned by another user
        return True
    return True


def _copy(spec: ModelSpec, local: Path) -> Path:
    """Copy the file or directory at `spec.path` into `local` (under its own name, beside
    `owner.json`); the local path to load."""
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
    name = Path(path).name
    target = local / (name if name not in ("", OWNER) else "checkpoint")
    if kind == fs.FileType.Directory:
        target.mkdir()   # copy_files creates the folders below it, not the top one
    fs.copy_files(path, str(target), source_filesystem=source,
                  destination_filesystem=fs.LocalFileSystem())
    return target


def file_safe(name: str) -> str:
    """`name` usable in a file or directory name: other characters than letters, digits, `.`,
    `_` and `-` become `_`."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)
