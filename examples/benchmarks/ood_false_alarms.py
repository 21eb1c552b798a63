"""How often does the signature check flag a model that is in the reference population?

For each `random` split of a data file (the development table's: 20% held out per seed, or
leave-one-model-out below 100 models) and each k, random anchors are drawn, the signature
distance limit is fitted on the split's references, and the share of held-out models whose
signature lies beyond it is printed for two distances side by side:

* `standardised`: columns standardised on the references, the limit the 99% quantile of each
  reference's in-sample distance to its nearest other (an earlier form of `PopulationCheck`);
* `as is`: Euclidean on the signature as it is (probabilities or outcomes), the same quantile
  (`PopulationCheck` now).

Held-out models of a random split are exchangeable with the references, so a calibrated check
flags about 1% of them. Two made-up models show the check still fires: `guesser` (a uniformly
random option on every anchor) and `always first` (option 0 on every anchor; all wrong on 0/1
files, where the signature is the outcome).

Usage (seconds per file):

    python examples/benchmarks/ood_false_alarms.py --data-dir ../shared/data/real \\
        --datasets mmlu_pro_29,openllm_mmlu,openllm_arc --k 10,25,50,100

Never point it at the reserved data while developing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import StandardScaler

from disco_ray.evaluation import model_splits
from disco_ray.io import read_outputs
from disco_ray.outputs import ModelOutputs
from disco_ray.uncertainty import OOD_QUANTILE, PopulationCheck


def made_up_signatures(outputs: ModelOutputs, k: int, rng: np.random.Generator) -> np.ndarray:
    """[2, d] signatures of a uniform guesser and of a model that always answers option 0."""
    if outputs.has_probs:
        choices = outputs.probs.shape[2]
        guesser = np.eye(choices)[rng.integers(0, choices, size=k)].reshape(-1)
        first = np.tile(np.eye(choices)[0], k)
        return np.vstack([guesser, first])
    return np.vstack([rng.integers(0, 2, size=k), np.zeros(k)]).astype(np.float64)


def standardised_flags(references: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """The earlier check: standardised columns, in-sample nearest-other limit."""
    scaler = StandardScaler().fit(references)
    z = scaler.transform(references)
    neighbours = NearestNeighbors(n_neighbors=2).fit(z)
    limit = np.quantile(neighbours.kneighbors(z)[0][:, 1], OOD_QUANTILE)
    return neighbours.kneighbors(scaler.transform(targets), n_neighbors=1)[0][:, 0] > limit


def as_is_flags(references: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """The check now (`PopulationCheck`), signature part only."""
    check = PopulationCheck.fit(np.hstack([references, np.zeros((len(references), 1))]),
                                np.zeros(len(references)))
    return check.distance(targets) > check.distance_limit


def flag_rates(outputs: ModelOutputs, k: int, seeds: int) -> dict[str, np.ndarray]:
    """Per distance: [held-out flag rate, guesser flag rate, always-first flag rate]."""
    rates = {"standardised": [], "as is": []}
    for split in model_splits(outputs, "random", seeds):
        rng = np.random.default_rng(split.seed)
        anchors = rng.choice(outputs.n_samples, k, replace=False)
        signature = outputs.signature(anchors)
        targets = np.vstack([signature[split.held_out], made_up_signatures(outputs, k, rng)])
        for name, flags in (("standardised", standardised_flags), ("as is", as_is_flags)):
            flagged = flags(signature[split.references], targets)
            rates[name].append([flagged[:-2].mean(), flagged[-2], flagged[-1]])
    return {name: np.mean(rows, axis=0) for name, rows in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data/real"))
    parser.add_argument("--datasets", default="mmlu_pro_29,openllm_mmlu,openllm_arc")
    parser.add_argument("--k", default="10,25,50,100")
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    print("| data | k | held-out flagged: standardised | as is | guesser: standardised | as is "
          "| always first: standardised | as is |\n|---|---|---|---|---|---|---|---|")
    for name in args.datasets.split(","):
        outputs = read_outputs(args.data_dir / f"{name}.npz")
        for k in map(int, args.k.split(",")):
            rates = flag_rates(outputs, k, args.seeds)
            cells = [f"{rates[d][i]:.3f}" for i in range(3) for d in ("standardised", "as is")]
            print(f"| {name} | {k} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
