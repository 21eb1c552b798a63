"""The on-disk form of a condensed benchmark: a directory holding a JSON manifest (settings,
choice, anchors, data hash), the references' outputs (Parquet) and the disagreement scores (npz
without pickle). Written atomically; read back with clear errors for anything this version did
not write."""

from __future__ import annotations

import json
from pathlib import Path
import numpy as np

from disco_ray import __version__
from disco_ray.condensed import CondensedBenchmark, CondenseSettings
from disco_ray.io.atomic import atomic_directory
from disco_ray.io.json_object import json_object
from disco_ray.io.parquet import read_parquet, write_parquet
from disco_ray.outputs import OutputsError

FORMAT_VERSION = 1
MANIFEST = "condensed.json"
REFERENCES_FILE = "references.parquet"
DISAGREEMENT_FILE = "disagreement.npz"
DATA_FILES = (REFERENCES_FILE, DISAGREEMENT_FILE)   # beside MANIFEST in a saved benchmark
FIX = "condense the benchmark again (disco-ray writes this file; do not edit it)"


def write_benchmark(bench: CondensedBenchmark, directory: Path) -> Path:
    """Write `bench` as a directory, atomically. An existing directory is replaced only if it is
    empty or an earlier benchmark holding nothing else (`atomic.check_replaceable`)."""
    with atomic_directory(directory, MANIFEST, DATA_FILES) as tmp:
        write_parquet(bench.references, tmp / REFERENCES_FILE)
        np.savez(tmp / DISAGREEMENT_FILE, sample_ids=np.array(list(bench.disagreement)),
                 scores=np.array(list(bench.disagreement.values()), dtype=np.float64))
        manifest = {"format_version": FORMAT_VERSION, "disco_ray_version": __version__,
                    "settings": bench.settings.to_json(), "choice": bench.choice,
                    "anchor_ids": bench.anchor_ids, "data_hash": bench.data_hash}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return directory


def read_benchmark(directory: Path) -> CondensedBenchmark:
    """A saved benchmark, its metamodel re-fitted (deterministic)."""
    path = directory / MANIFEST
    if not path.exists():
        raise OutputsError(f"{path}: not found. Fix: point at a directory written by "
                           "`disco-ray condense`")
    manifest = json_object(path.read_text(), str(path), FIX)
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise OutputsError(
            f"{path}: field 'format_version' is {version} (written by disco-ray "
            f"{manifest.get('disco_ray_version')}); this disco-ray {__version__} reads "
            f"{FORMAT_VERSION}. Fix: condense the benchmark again")
    try:
        settings = CondenseSettings.from_json(manifest["settings"])
        choice, digest = manifest["choice"], manifest["data_hash"]
    except (KeyError, TypeError) as err:
        problem = f"field {err} is missing" if isinstance(err, KeyError) else f"settings: {err}"
        raise OutputsError(f"{path}: {problem}, not what this disco-ray {__version__} writes. "
                           f"Fix: {FIX}") from err
    with np.load(directory / DISAGREEMENT_FILE, allow_pickle=False) as data:
        disagreement = dict(zip(data["sample_ids"].tolist(), data["scores"].tolist()))
    return CondensedBenchmark(settings, read_parquet(directory / REFERENCES_FILE), choice,
                              disagreement, digest)
