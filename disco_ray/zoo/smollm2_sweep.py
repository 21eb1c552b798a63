"""A checkpoint sweep of SmolLM2-135M: the population of a real model's variants that teams
evaluate by the dozen, built from the registry package (nothing downloaded at run time).

`SWEEP` lists the checkpoints: the base model, round-to-nearest weight quantization at several
bit widths and group sizes, magnitude pruning at several levels, dropped decoder layers, and
weight-space interpolations between the base and its 2-bit quantization (`weight_edits`). Each
is built once, deterministically, into `<cache_dir>/<name>/` (a plain Hugging Face folder,
bfloat16 safetensors by default, computed in float32 by the `hf` backend) and reused afterwards.

`references(...)` and `targets(...)` are config factories: every other checkpoint of each
family is a reference, the rest are targets, so both cover each family's range.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from disco_ray.io.atomic import atomic_directory
from disco_ray.zoo import weight_edits
from disco_ray.zoo.smollm2 import MARKER, base_model, save_model

DEFAULT_CACHE = "~/.cache/disco_ray/smollm2"
DEGRADED = {"bits": 2, "group_size": None}   # the far end of the interpolations
DTYPES = ("bfloat16", "float32")


@dataclass(frozen=True)
class Checkpoint:
    """One sweep member: a name and the edit (`kind`, keyword arguments) applied to the base."""

    name: str
    kind: str
    args: dict = field(default_factory=dict)


def _group_label(group_size: int | None) -> str:
    return "row" if group_size is None else f"g{group_size}"


def _sweep() -> tuple[Checkpoint, ...]:
    quant = [Checkpoint(f"quant-w{b}-{_group_label(g)}", "quant", {"bits": b, "group_size": g})
             for b in (8, 6, 5, 4, 3, 2) for g in (32, 64, None)]
    prune = [Checkpoint(f"prune-{p}", "prune", {"sparsity": p / 100})
             for p in (10, 20, 30, 40, 50, 60, 70)]
    drop = [Checkpoint(f"drop-{'-'.join(map(str, ix))}", "drop", {"indices": ix})
            for ix in ((1,), (5,), (10,), (15,), (20,), (25,), (12, 13), (10, 11, 12, 13))]
    interp = [Checkpoint(f"interp-{a:02d}", "interp", {"alpha": a / 100})
              for a in (10, 20, 30, 40, 50, 60, 70, 80)]
    return (Checkpoint("base", "base"), *quant, *prune, *drop, *interp)


SWEEP = _sweep()
BY_NAME = {c.name: c for c in SWEEP}
FAMILIES = ("base", "quant", "prune", "drop", "interp")


def default_split() -> tuple[list[str], list[str]]:
    """(reference names, target names): alternating within each family, starting with a
    reference, so references and targets both span each family's range."""
    refs, targets = [], []
    for family in FAMILIES:
        members = [c.name for c in SWEEP if c.kind == family]
        refs += members[0::2]
        targets += members[1::2]
    return refs, targets


def apply_edit(model, checkpoint: Checkpoint):
    """`model` (the base, modified in place) edited as `checkpoint` says; returns it."""
    kind, args = checkpoint.kind, checkpoint.args
    if kind == "base":
        return model
    if kind == "quant":
        return weight_edits.fake_quantize(model, args["bits"], args["group_size"])
    if kind == "prune":
        return weight_edits.magnitude_prune(model, args["sparsity"])
    if kind == "drop":
        return weight_edits.drop_layers(model, args["indices"])
    if kind == "interp":
        degraded = {name: tensor.clone() for name, tensor in model.state_dict().items()}
        for name, weight in weight_edits.decoder_linear_weights(model):
            degraded[f"model.layers.{name}.weight"] = weight_edits.quantize_tensor(
                weight, DEGRADED["bits"], DEGRADED["group_size"])
        return weight_edits.interpolate(model, degraded, args["alpha"])
    raise ValueError(f"unknown edit kind '{kind}'. Fix: use one of {', '.join(FAMILIES)}")


def build_checkpoint(base: Path, checkpoint: Checkpoint, cache_dir: Path,
                     dtype: str = "bfloat16") -> Path:
    """The folder of `checkpoint` under `cache_dir`, built from the model folder `base` unless
    it is already there (built in a temporary folder and renamed into place)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if dtype not in DTYPES:
        raise ValueError(f"dtype '{dtype}' is not supported. Fix: use one of {', '.join(DTYPES)}")
    path = Path(cache_dir) / f"{checkpoint.name}-{dtype}"
    if (path / MARKER).is_file():
        return path
    with atomic_directory(path, MARKER, others=_saved_files(base)) as tmp:
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
        apply_edit(model, checkpoint)
        save_model(model.to(getattr(torch, dtype)), AutoTokenizer.from_pretrained(base), tmp)
    return path


def _saved_files(base: Path) -> list[str]:
    """The file names a saved checkpoint folder holds (those of the base folder)."""
    return sorted(p.name for p in Path(base).iterdir())


def checkpoints(names: Sequence[str] | None = None, cache_dir: str | Path | None = None,
                dtype: str = "bfloat16") -> dict[str, Path]:
    """Build (once) and return {name: folder} of the sweep checkpoints `names` (default: all)."""
    names = [c.name for c in SWEEP] if names is None else list(names)
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise ValueError(f"unknown sweep checkpoints {unknown}. Fix: choose names from "
                         f"disco_ray.zoo.smollm2_sweep.SWEEP, e.g. {', '.join(list(BY_NAME)[:4])}")
    cache = Path(os.path.expanduser(str(cache_dir or DEFAULT_CACHE)))
    base = base_model(cache)
    return {n: build_checkpoint(base, BY_NAME[n], cache, dtype) for n in names}


def entries(names: Sequence[str], cache_dir: str | Path | None = None, backend: str = "hf",
            options: dict | None = None, dtype: str = "bfloat16",
            device: str = "cpu") -> list[dict]:
    """Model entries (`backend` on `device`) of the sweep checkpoints `names`, named
    `smollm2-<name>`."""
    paths = checkpoints(names, cache_dir, dtype)
    return [{"name": f"smollm2-{name}", "backend": backend, "path": str(path), "device": device,
             "options": dict(options or {})} for name, path in paths.items()]


def references(names: Sequence[str] | None = None, cache_dir: str | Path | None = None,
               backend: str = "hf", options: dict | None = None, dtype: str = "bfloat16",
               device: str = "cpu") -> list[dict]:
    """Config factory: the reference checkpoints (`names`, default: `default_split()`'s)."""
    return entries(default_split()[0] if names is None else names, cache_dir, backend, options,
                   dtype, device)


def targets(names: Sequence[str] | None = None, cache_dir: str | Path | None = None,
            backend: str = "hf", options: dict | None = None, dtype: str = "bfloat16",
            device: str = "cpu") -> list[dict]:
    """Config factory: the target checkpoints (`names`, default: `default_split()`'s)."""
    return entries(default_split()[1] if names is None else names, cache_dir, backend, options,
                   dtype, device)
