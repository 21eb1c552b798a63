"""Disagreement reduction over an on-disk M x N x C tensor: in-memory numpy vs Ray Data.

Writes synthetic model outputs in disco-ray's Parquet format (a few models per part, one part at a
time), then runs each path in its own subprocess, which reports its wall time and its own peak RSS
(VmHWM). Paths:

- numpy:     one process streams the parts through pyarrow, part by part, with `block_state`.
- reference: the same stream, with the project's `DisagreementState.of` per part.
- ray:       `ray_disagreement_state` on a local Ray (reduction timed apart from `ray.init`).

No path loads the whole tensor: numpy streams one part (10 models = 32 MB) at a time. Parts hold
several models because each carries the sample ids in its metadata (about 2 MB at N = 200,000).

Full size (1.6 GB of float32):  python examples/benchmarks/bench_disagreement.py
Quick:                          python examples/benchmarks/bench_disagreement.py --models 40 \
                                    --samples 20000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow.parquet as pq

from disco_ray.disagreement import DisagreementState
from disco_ray.distributed.reduction import block_state
from disco_ray.io.parquet import META_KEY, write_parquet
from disco_ray.outputs import ModelOutputs

PATHS = ("numpy", "reference", "ray")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=500)
    parser.add_argument("--samples", type=int, default=200_000)
    parser.add_argument("--choices", type=int, default=4)
    parser.add_argument("--models-per-part", type=int, default=10)
    parser.add_argument("--workdir", type=Path,
                        default=Path(tempfile.gettempdir()) / "disco_ray_bench_disagreement")
    parser.add_argument("--paths", nargs="+", choices=PATHS, default=list(PATHS))
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of each path, interleaved; the fastest is reported")
    parser.add_argument("--object-store-mb", type=int, default=1024)
    parser.add_argument("--run-path", choices=PATHS, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def data_dir(args: argparse.Namespace) -> Path:
    """The folder of parts for this size, written (part by part) unless already complete."""
    size = f"m{args.models}_n{args.samples}_c{args.choices}_p{args.models_per_part}"
    folder = args.workdir / size
    if not (folder / "COMPLETE").exists():
        rng = np.random.default_rng(0)
        sample_ids = [f"s{i:07d}" for i in range(args.samples)]
        gold = rng.integers(0, args.choices, size=args.samples)
        for start in range(0, args.models, args.models_per_part):
            count = min(args.models_per_part, args.models - start)
            write_parquet(synthetic_part(rng, start, count, sample_ids, gold, args.choices),
                          folder / f"part-{start:05d}.parquet")
        (folder / "COMPLETE").touch()
    return folder


def synthetic_part(rng: np.random.Generator, start: int, count: int, sample_ids: list[str],
                   gold: np.ndarray, choices: int) -> ModelOutputs:
    """`count` models whose skill sharpens the logit of the gold answer."""
    logits = rng.standard_normal((count, len(sample_ids), choices), dtype=np.float32)
    skill = rng.uniform(0.0, 3.0, size=(count, 1)).astype(np.float32)
    logits[:, np.arange(len(sample_ids)), gold] += skill
    probs = np.exp(logits - logits.max(axis=2, keepdims=True))
    probs /= probs.sum(axis=2, keepdims=True)
    model_ids = [f"model-{start + i:05d}" for i in range(count)]
    return ModelOutputs.from_probs(model_ids, sample_ids, probs, gold)


def stream_numpy(folder: Path, kernel: Callable[[np.ndarray], DisagreementState]
                 ) -> DisagreementState:
    """Single process: read part by part with pyarrow, fold each part's state into the total."""
    state = None
    for part in sorted(folder.glob("*.parquet")):
        file = pq.ParquetFile(part)
        n, c = (json.loads(file.schema_arrow.metadata[META_KEY])[k]
                for k in ("n_samples", "n_choices"))
        column = file.read(columns=["probs"]).column("probs")
        chunks = [chunk.flatten().to_numpy() for chunk in column.chunks]
        probs = (chunks[0] if len(chunks) == 1 else np.concatenate(chunks)).reshape(-1, n, c)
        partial = kernel(probs)
        state = partial if state is None else state.merge(partial)
    return state


def run_ray(folder: Path, object_store_mb: int) -> tuple[DisagreementState, dict[str, float]]:
    """Start a local Ray, then reduce with Ray Data twice: the first call also starts the worker
    processes, the second finds them running. Returns the state and the three timings."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    from disco_ray.distributed.reduction import ray_disagreement_state

    clock = time.perf_counter()
    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False,
             object_store_memory=object_store_mb * 1024**2, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    timings = {"init_s": time.perf_counter() - clock}
    try:
        for key in ("seconds", "warm_s"):
            clock = time.perf_counter()
            state = ray_disagreement_state(folder)
            timings[key] = time.perf_counter() - clock
        return state, timings
    finally:
        ray.shutdown()


def run_path(args: argparse.Namespace) -> None:
    """Child mode: run one path, save its scores, print one JSON line of measurements."""
    folder = data_dir(args)
    if args.run_path == "ray":
        state, timings = run_ray(folder, args.object_store_mb)
    else:
        clock = time.perf_counter()
        state = stream_numpy(folder, block_state if args.run_path == "numpy"
                             else DisagreementState.of)
        timings = {"seconds": time.perf_counter() - clock}
    np.savez(folder / f"scores_{args.run_path}.npz", pds=state.scores("pds"),
             jsd=state.scores("jsd"))
    print(json.dumps({"path": args.run_path, **timings, "peak_rss_mb": peak_rss_mb()}))


def peak_rss_mb() -> float:
    """This process's peak resident memory (Linux VmHWM; unlike getrusage's ru_maxrss, it does not
    inherit the high-water mark of the parent that forked it)."""
    status = Path("/proc/self/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def measure(path: str, argv: list[str]) -> dict:
    """Run one path in a fresh interpreter; its last stdout line is its JSON report."""
    result = subprocess.run([sys.executable, __file__, *argv, "--run-path", path],
                            capture_output=True, text=True, check=False)
    if result.returncode:
        raise RuntimeError(f"path {path} failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def best_runs(args: argparse.Namespace, argv: list[str]) -> list[dict]:
    """Each path `--repeat` times, interleaved (load on a shared machine drifts); per path the
    fastest run, with the highest peak RSS seen over its runs."""
    runs = [measure(path, argv) for _ in range(args.repeat) for path in args.paths]
    rows = []
    for path in args.paths:
        mine = [run for run in runs if run["path"] == path]
        rows.append({**min(mine, key=lambda run: run["seconds"]),
                     "peak_rss_mb": max(run["peak_rss_mb"] for run in mine)})
    return rows


def report(args: argparse.Namespace, rows: list[dict]) -> None:
    """Print throughput, the Ray/numpy ratio, peak memory and agreement of the scores."""
    cells, gb = args.models * args.samples, args.models * args.samples * args.choices * 4 / 1e9
    print(f"tensor: {args.models} models x {args.samples} samples x {args.choices} choices "
          f"float32 = {gb:.2f} GB in {-(-args.models // args.models_per_part)} parts; "
          f"{os.cpu_count()} cores; best of {args.repeat}; load average now "
          f"{os.getloadavg()[0]:.1f}")
    print(f"{'path':<10} {'seconds':>8} {'Mcells/s':>9} {'GB/s':>6} {'peak RSS MB':>12}")
    for row in rows:
        print(f"{row['path']:<10} {row['seconds']:8.2f} {cells / row['seconds'] / 1e6:9.1f} "
              f"{gb / row['seconds']:6.2f} {row['peak_rss_mb']:12.0f}")
    by_path = {row["path"]: row for row in rows}
    if "ray" in by_path:
        ray_row = by_path["ray"]
        print(f"ray: ray.init {ray_row['init_s']:.1f} s (not counted); the first call above "
              f"includes starting worker processes; a second call took {ray_row['warm_s']:.2f} s "
              f"({cells / ray_row['warm_s'] / 1e6:.1f} Mcells/s)")
        for base in ("numpy", "reference"):
            if base in by_path:
                print(f"ratio ray/{base} throughput: first call "
                      f"{by_path[base]['seconds'] / ray_row['seconds']:.2f}x, second call "
                      f"{by_path[base]['seconds'] / ray_row['warm_s']:.2f}x")
    print_agreement(data_dir(args), [row["path"] for row in rows])


def print_agreement(folder: Path, paths: list[str]) -> None:
    """Largest score difference of each path against the first one."""
    scores = {p: np.load(folder / f"scores_{p}.npz") for p in paths}
    first = scores[paths[0]]
    for path in paths[1:]:
        diff = max(np.abs(scores[path][k] - first[k]).max() for k in ("pds", "jsd"))
        print(f"max |score difference| {path} vs {paths[0]}: {diff:.2e}")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.run_path:
        run_path(args)
        return
    start = time.perf_counter()
    data_dir(args)
    print(f"data ready in {time.perf_counter() - start:.1f} s under {args.workdir}")
    report(args, best_runs(args, argv))


if __name__ == "__main__":
    main()
