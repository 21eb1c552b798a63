"""Shared by several test modules: small synthetic model populations (the core tests), where
the deployment files in cluster/ are and how to read them (their offline checks), the README's
code blocks, and the environment of a `python -m disco_ray` child process."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import yaml

from disco_ray.outputs import ModelOutputs

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CLUSTER = ROOT / "cluster"
IMAGE = "ghcr.io/your-org/disco-ray:0.1.0"   # the image the files in cluster/ run


def synthetic_population(n_models: int = 60, n_samples: int = 80, n_choices: int = 4,
                         seed: int = 0, with_probs: bool = True) -> ModelOutputs:
    """Models of varying ability answering items of varying difficulty (a 2PL-like world)."""
    rng = np.random.default_rng(seed)
    ability = rng.normal(size=n_models)
    difficulty = rng.normal(size=n_samples)
    p_right = 1 / (1 + np.exp(-(ability[:, None] - difficulty[None, :]) * 1.5))
    gold = rng.integers(0, n_choices, size=n_samples)
    logits = rng.normal(size=(n_models, n_samples, n_choices))
    logits[np.arange(n_models)[:, None], np.arange(n_samples)[None, :], gold[None, :]] += \
        4 * p_right
    probs = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)
    groups = np.array([f"subject{i % 4}" for i in range(n_samples)])
    model_ids = [f"model-{i:03d}" for i in range(n_models)]
    sample_ids = [f"q{i}" for i in range(n_samples)]
    outputs = ModelOutputs.from_probs(model_ids, sample_ids, probs, gold, groups=groups)
    if with_probs:
        return outputs
    return ModelOutputs(model_ids, sample_ids, outputs.correct, groups=groups)


def load_yaml(path: Path):
    """A YAML file, parsed with PyYAML's safe loader."""
    with open(path) as f:
        return yaml.safe_load(f)


def code_blocks(markdown: str, language: str) -> list[str]:
    """The fenced code blocks of one language in a Markdown text, in order."""
    return re.findall(rf"```{language}\n(.*?)```", markdown, flags=re.S)


def readme_python_block(containing: str) -> str:
    """The README's one Python block that contains `containing`."""
    [block] = [b for b in code_blocks(README.read_text(), "python") if containing in b]
    return block


def cli_env() -> dict[str, str]:
    """The environment for a `python -m disco_ray` child that starts a local Ray of its own:
    this process's, with token authentication off and no RAY_ADDRESS to join."""
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)
    return env
