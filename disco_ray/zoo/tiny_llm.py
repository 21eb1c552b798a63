"""Tiny GPT-2 populations for the CPU smoke run: built in code under `<output_dir>/models/`.

`references(output_dir)` and `targets(output_dir)` are config factories: they build (once; a
rerun reuses the directories) randomly initialised character-level GPT-2s of different seeds and
sizes, and return their model entries for the `hf` backend (on CPU unless `device` says
otherwise, e.g. `cuda` for the one-GPU smoke run).
"""

from __future__ import annotations

from pathlib import Path

from disco_ray.io.atomic import atomic_directory

# (n_layer, n_embd) cycled over the models of a population.
SHAPES = ((1, 32), (2, 32), (2, 48), (3, 64))
OPTIONS = {"batch_size": 32}


def references(output_dir: str | Path, count: int = 8, first_seed: int = 0,
               device: str = "cpu") -> list[dict]:
    """`count` reference models `tiny-ref-<seed>`."""
    return population(Path(output_dir), "tiny-ref", range(first_seed, first_seed + count), device)


def targets(output_dir: str | Path, count: int = 3, first_seed: int = 100,
            device: str = "cpu") -> list[dict]:
    """`count` target models `tiny-target-<seed>` (seeds disjoint from the references')."""
    return population(Path(output_dir), "tiny-target", range(first_seed, first_seed + count),
                      device)


def population(output_dir: Path, prefix: str, seeds: range, device: str = "cpu") -> list[dict]:
    """Model entries of one tiny GPT-2 per seed, with shapes cycling through `SHAPES`."""
    entries = []
    for i, seed in enumerate(seeds):
        n_layer, n_embd = SHAPES[i % len(SHAPES)]
        name = f"{prefix}-{seed}"
        path = build_once(output_dir / "models" / name, seed, n_layer, n_embd)
        entries.append({"name": name, "backend": "hf", "path": str(path), "device": device,
                        "options": dict(OPTIONS)})
    return entries


def build_once(path: Path, seed: int, n_layer: int, n_embd: int) -> Path:
    """Build a tiny GPT-2 at `path` unless it is already there (built in a temporary directory
    and renamed, so an interrupted build leaves nothing behind)."""
    from disco_ray.backends.tiny import build_tiny_gpt2

    if (path / "config.json").is_file():
        return path
    with atomic_directory(path, "config.json") as tmp:
        build_tiny_gpt2(tmp, seed=seed, n_layer=n_layer, n_head=2, n_embd=n_embd)
    return path
