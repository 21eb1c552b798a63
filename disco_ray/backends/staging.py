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
its owner (`owner.json`: host, pid, and on Linux the boot, PID namespace and start time) and the
next staging that can tell the owner is gone (same boot and PID namespace) deletes the copy.
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
        (local / OWNER).write_text(json.dumps(_owner()))
        yield replace(spec, path=str(_copy(spec, local)))
    finally:
        shutil.rmtree(local, ignore_errors=True)


def remove_abandoned(root: Path) -> list[Path]:
    """Delete the staged copies under `root` whose loading process is gone; the deleted.

    Kept: a directory without a readable `owner.json` (not a copy, one being created, or one
    staged before copies recorded their owner), a symbolic link, and a copy whose owner this
    process cannot check (another machine or boot, another PID namespace, no Linux /proc)."""
    removed, me = [], _process_identity()
    for folder in sorted(root.glob(f"{PREFIX}*")):
        try:
            owner = json.loads((folder / OWNER).read_text())
        except (OSError, ValueError):
            continue
        if folder.is_symlink() or not _abandoned(owner, me):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            log.warning("removed %s: a staged checkpoint whose process (pid %s) died while "
                        "loading it", folder, owner["pid"])
            removed.append(folder)
    return removed


def _owner() -> dict:
    """This process as `owner.json` records it: host and pid, and, where Linux /proc tells
    them, the kernel boot, the PID namespace and the process's start time."""
    return {"host": socket.gethostname(), "pid": os.getpid(), **(_process_identity() or {})}


def _process_identity() -> dict | None:
    """What tells this process's pid from the same number elsewhere or later; None without
    /proc."""
    try:
        return {"boot": Path("/proc/sys/kernel/random/boot_id").read_text().strip(),
                "pid_namespace": os.readlink("/proc/self/ns/pid"),
                "started": _start_time(os.getpid())}
    except OSError:
        return None


def _start_time(pid: int) -> int:
    """When process `pid` started (clock ticks after boot, /proc/<pid>/stat field 22);
    FileNotFoundError when no such process exists."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[19])   # fields after the (command) start at 3


def _abandoned(owner: object, me: dict | None) -> bool:
    """Whether the process `owner` (an `owner.json`) names is certainly gone: same boot and PID
    namespace as this process (`me`, its `_process_identity`), and no process with its pid and
    start time."""
    if me is None or not isinstance(owner, dict) or not isinstance(owner.get("pid"), int):
        return False
    if (owner.get("boot"), owner.get("pid_namespace")) != (me["boot"], me["pid_namespace"]):
        return False
    try:
        return _start_time(owner["pid"]) != owner.get("started")   # the pid was reused
    except FileNotFoundError:
        return True
    except (OSError, ValueError, IndexError):
        return False


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
        target.mkdir()   # copy_files would not create it for an empty directory
    fs.copy_files(path, str(target), source_filesystem=source,
                  destination_filesystem=fs.LocalFileSystem())
    return target


def file_safe(name: str) -> str:
    """`name` usable in a file or directory name: other characters than letters, digits, `.`,
    `_` and `-` become `_`."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)
