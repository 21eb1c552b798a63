"""Tiny GPT-2 populations for the CPU smoke run: built in code under `<output_dir>/models/`
(`models_vllm/` for `backend: vllm`).

`references(output_dir)` and `targets(output_dir)` are config factories: they build (once; a
rerun reuses the directories) randomly initialised character-level GPT-2s of different seeds and
sizes, and return their model entries for the `hf` backend (or `backend: vllm`), on CPU unless
`device` says otherwise (e.g. `cuda` for the one-GPU smoke run).
"""

from __future__ import annotations

from pathlib import Path

from disco_ray.io.atomic import atomic_directory

# Per backend: (n_layer, n_embd, n_head) cycled over the models of a population (vLLM's CPU
# attention takes heads of 32, 64, 80, ... dimensions), the folder under the output directory
# and the backend's options (vLLM: a 64 MiB KV cache, 40k tokens of these models).
SHAPES = {"hf": ((1, 32, 2), (2, 32, 2), (2, 48, 2), (3, 64, 2)),
          "vllm": ((1, 32, 1), (2, 32, 1), (2, 64, 2), (3, 64, 2))}
FOLDERS = {"hf": "models", "vllm": "models_vllm"}
OPTIONS = {"hf": {"batch_size": 32}, "vllm": {"kv_cache_memory_bytes": 2**26}}


def references(output_dir: str | Path, count: int = 8, first_seed: int = 0,
               device: str = "cpu", backend: str = "hf") -> list[dict]:
    """`count` reference models `tiny-ref-<seed>`."""
    return population(Path(output_dir), "tiny-ref", range(first_seed, first_seed + count), device,
                      backend)


def targets(output_dir: str | Path, count: int = 3, first_seed: int = 100,
            device: str = "cpu", backend: str = "hf") -> list[dict]:
    """`count` target models `tiny-target-<seed>` (seeds disjoint from the references')."""
    return population(Path(output_dir), "tiny-target", range(first_seed, first_seed + count),
                      device, backend)


def population(output_dir: Path, prefix: str, seeds: range, device: str = "cpu",
               backend: str = "hf") -> list[dict]:
    """Model entries of one tiny GPT-2 per seed, with shapes cycling through `SHAPES`, for
    `backend` (`hf` or `vllm`)."""
    if backend not in OPTIONS:
        raise ValueError(f"factory option 'backend': '{backend}' is not one of "
                         f"{', '.join(OPTIONS)}. Fix: use one of them")
    entries = []
    for i, seed in enumerate(seeds):
        n_layer, n_embd, n_head = SHAPES[backend][i % len(SHAPES[backend])]
        name = f"{prefix}-{seed}"
        path = build_once(output_dir / FOLDERS[backend] / name, seed, n_layer, n_embd, n_head)
        entries.append({"name": name, "backend": backend, "path": str(path), "device": device,
                        "options": dict(OPTIONS[backend])})
    return entries


def build_once(path: Path, seed: int, n_layer: int, n_embd: int, n_head: int = 2) -> Path:
    """Build a tiny GPT-2 at `path` unless it is already there (built in a temporary directory
    and renamed, so an interrupted build leaves nothing behind)."""
    from disco_ray.backends.tiny import build_tiny_gpt2

    if (path / "config.json").is_file():
        return path
    with atomic_directory(path, "config.json") as tmp:
        build_tiny_gpt2(tmp, seed=seed, n_layer=n_layer, n_head=n_head, n_embd=n_embd)
    return path
