"""The on-disk form of a condensed benchmark: a directory holding a JSON manifest (settings,
choice, anchors, data hash, the sha256 of each data file), the references' outputs on the
anchors (Parquet), the disagreement scores and the metamodel's reference context (npz without
pickle). Written atomically; read back with clear errors for anything this version did not
write, and for a data file changed since (its sha256 differs). The only way a benchmark is
saved or loaded."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from disco_ray import __version__
from disco_ray.condensed import CondensedBenchmark
from disco_ray.design import CondenseSettings
from disco_ray.io.atomic import atomic_directory
from disco_ray.io.json_object import json_object
from disco_ray.io.parquet import read_parquet, write_parquet
from disco_ray.metamodels import ReferenceContext
from disco_ray.outputs import ModelOutputs, OutputsError

FORMAT_VERSION = 2
MANIFEST = "condensed.json"
REFERENCES_FILE = "references.parquet"
DISAGREEMENT_FILE = "disagreement.npz"
CONTEXT_FILE = "context.npz"
# beside MANIFEST in a saved benchmark
DATA_FILES = (REFERENCES_FILE, DISAGREEMENT_FILE, CONTEXT_FILE)
FIX = "condense the benchmark again (disco-ray writes this file; do not edit it)"


def write_benchmark(bench: CondensedBenchmark, directory: str | Path) -> Path:
    """Write `bench` as a directory, atomically. An existing directory is replaced only if it is
    empty or an earlier benchmark holding nothing else (`atomic.check_replaceable`)."""
    directory = Path(directory)
    with atomic_directory(directory, MANIFEST, DATA_FILES) as tmp:
        write_parquet(bench.references, tmp / REFERENCES_FILE)
        np.savez(tmp / DISAGREEMENT_FILE, sample_ids=np.array(list(bench.disagreement)),
                 scores=np.array(list(bench.disagreement.values()), dtype=np.float64))
        np.savez(tmp / CONTEXT_FILE, **_context_arrays(bench.context))
        manifest = {"format_version": FORMAT_VERSION, "disco_ray_version": __version__,
                    "settings": bench.settings.to_json(), "choice": bench.choice,
                    "anchor_ids": bench.anchor_ids, "data_hash": bench.data_hash,
                    "files": {name: file_sha256(tmp / name) for name in DATA_FILES}}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return directory


def _context_arrays(context: ReferenceContext) -> dict[str, np.ndarray]:
    """What prediction needs of a reference context, as plain arrays."""
    arrays = {"mean_is_unbiased": np.array(context.mean_is_unbiased)}
    if context.weights is not None:
        arrays["weights"] = np.asarray(context.weights, dtype=np.float64)
    for name in IRT_SETUPS:
        if getattr(context, name) is not None:
            arrays |= _setup_arrays(name, getattr(context, name))
    return {key: np.asarray(value) for key, value in arrays.items()}


IRT_SETUPS = ("irt", "mirt")   # the context's gp-IRT setups, each saved under its name
IRT_SCALARS = ("bias", "variance", "lambda")


def _setup_arrays(name: str, irt: dict) -> dict:
    """A gp-IRT setup as arrays named `<name>_<field>` (its shape: NaN for no prior SD)."""
    shape = [np.nan if value is None else value for value in irt["shape"]]
    return {f"{name}_anchor_a": irt["anchor_items"]["a"],
            f"{name}_anchor_b": irt["anchor_items"]["b"],
            f"{name}_other_a": irt["other_items"]["a"], f"{name}_other_b": irt["other_items"]["b"],
            f"{name}_weights": irt["weights"], f"{name}_shape": np.asarray(shape, np.float64),
            **{f"{name}_{key}": np.float64(irt[key]) for key in IRT_SCALARS}}


def _read_setup(data, name: str) -> dict | None:
    """The gp-IRT setup saved by `_setup_arrays` under `name`, or None."""
    if f"{name}_anchor_a" not in data:
        return None
    irt = {"anchor_items": {"a": data[f"{name}_anchor_a"].tolist(),
                            "b": data[f"{name}_anchor_b"].tolist()},
           "other_items": {"a": data[f"{name}_other_a"].tolist(),
                           "b": data[f"{name}_other_b"].tolist()},
           "weights": data[f"{name}_weights"].tolist(),
           **{key: float(data[f"{name}_{key}"]) for key in IRT_SCALARS}}
    if f"{name}_shape" in data:
        dims, prior_a_sd = data[f"{name}_shape"].tolist()
        irt["shape"] = [int(dims), None if np.isnan(prior_a_sd) else prior_a_sd]
    return irt


def _read_context(path: Path, references: ModelOutputs) -> ReferenceContext:
    """The reference context saved beside a benchmark's references on the anchors."""
    with np.load(path, allow_pickle=False) as data:
        weights = data["weights"] if "weights" in data else None
        return ReferenceContext(
            anchors=np.arange(references.n_samples), weights=weights,
            gold=None if references.gold is None else references.gold.tolist(),
            has_probs=references.has_probs, mean_is_unbiased=bool(data["mean_is_unbiased"]),
            **{name: _read_setup(data, name) for name in IRT_SETUPS}, source=str(path))


def read_benchmark(directory: str | Path) -> CondensedBenchmark:
    """A saved benchmark, its metamodel re-fitted (deterministic)."""
    directory = Path(directory)
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
        choice, digest, files = manifest["choice"], manifest["data_hash"], manifest["files"]
    except (KeyError, TypeError) as err:
        problem = f"field {err} is missing" if isinstance(err, KeyError) else f"settings: {err}"
        raise OutputsError(f"{path}: {problem}, not what this disco-ray {__version__} writes. "
                           f"Fix: {FIX}") from err
    _check_files(directory, files if isinstance(files, dict) else {})
    with np.load(directory / DISAGREEMENT_FILE, allow_pickle=False) as data:
        disagreement = dict(zip(data["sample_ids"].tolist(), data["scores"].tolist()))
    references = read_parquet(directory / REFERENCES_FILE)
    return CondensedBenchmark(settings, references, choice,
                              _read_context(directory / CONTEXT_FILE, references), disagreement,
                              digest)


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_files(directory: Path, hashes: dict) -> None:
    """Refuse a data file that is missing or differs from the one the manifest was written
    with (edited, truncated, swapped)."""
    for name in DATA_FILES:
        path = directory / name
        if not path.is_file():
            raise OutputsError(f"{path}: not found. Fix: {FIX}")
        if file_sha256(path) != hashes.get(name):
            raise OutputsError(f"{path}: changed since it was condensed (its sha256 differs from "
                               f"the one in {MANIFEST}). Fix: {FIX}")
