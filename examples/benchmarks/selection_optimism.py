"""How much does validating an anchor design on the references that chose it flatter it?

For each held-out split of a data file and each anchor design (one `disco` selection candidate),
this prints three mean absolute errors side by side:

* `plain`: the design's cross-validated error without nesting (the
  anchors chosen on every reference, then the metamodel cross-validated on those same models);
* `nested`: `cross_validated_error`, each fold's references predicted by a benchmark condensed
  on the other folds, anchors included (what `disco` uses below `nested_below` references);
* `held out`: the error on the split's held-out models.

`nested - plain` is the optimism of the plain estimate; a design chosen from the references'
outcomes that gains more of it than random anchors is favoured for the wrong reason. The last
lines say which design each criterion picks per split and the held-out error of those picks.

Usage (mmlu_pro_29, leave-one-model-out: about 10 min per k on one core):

    python examples/benchmarks/selection_optimism.py --data ../shared/data/real/mmlu_pro_29.npz \\
        --k 25,50

Never point it at the reserved data while developing.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np
from tqdm import tqdm

from disco_ray.design import AnchorDesign
from disco_ray.evaluation import model_splits
from disco_ray.io import read_outputs
from disco_ray.methods import method_settings
from disco_ray.search import condense, cross_validated_error

COLUMNS = ("plain", "nested", "held out")


def design_errors(path: str, k: int, designs: list[str], seeds: int) -> dict[str, np.ndarray]:
    """Per design, an array (splits x COLUMNS) of mean absolute errors in percentage points."""
    outputs = read_outputs(path)
    y = outputs.scores()
    rows: dict[str, list] = {design: [] for design in designs}
    splits = list(model_splits(outputs, "random", seeds))
    for split in tqdm(splits, desc=f"k={k}"):
        refs, held = outputs.take_models(split.references), outputs.take_models(split.held_out)
        for design in designs:
            settings = replace(method_settings("disco", k, split.seed),
                               designs=(AnchorDesign.parse(design),))
            bench = condense(refs, settings)
            held_error = np.mean(np.abs([p.score for p in bench.predict(held)]
                                        - y[split.held_out]))
            rows[design].append((bench.choice["cv_mae"], cross_validated_error(refs, settings),
                                 held_error))
    return {design: 100 * np.array(values) for design, values in rows.items()}


def report(k: int, errors: dict[str, np.ndarray]) -> None:
    print(f"\nk = {k}: mean over {len(next(iter(errors.values())))} splits (pp)")
    print(f"{'design':<16}" + "".join(f"{c:>10}" for c in COLUMNS) + f"{'optimism':>10}")
    for design, e in errors.items():
        mean = e.mean(axis=0)
        cells = "".join(f"{v:>10.2f}" for v in (*mean, mean[1] - mean[0]))
        print(f"{design:<16}{cells}")
    stacked = np.stack(list(errors.values()))          # designs x splits x COLUMNS
    for column, name in ((0, "plain"), (1, "nested")):
        pick = stacked[:, :, column].argmin(axis=0)
        chosen = stacked[pick, np.arange(len(pick)), 2]
        counts = ", ".join(f"{d} {np.sum(pick == i)}" for i, d in enumerate(errors))
        print(f"chosen by {name:<7} ({counts}): held-out MAE {chosen.mean():.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--k", default="25,50")
    parser.add_argument("--designs", default="random,cluster-random")
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    for k in map(int, args.k.split(",")):
        report(k, design_errors(args.data, k, args.designs.split(","), args.seeds))


if __name__ == "__main__":
    main()
