"""The Ray layer: model-hosting actors, their scheduler, the per-model output cache, the Ray Data
disagreement reduction, and the evaluation protocol's cells as tasks. It orchestrates only; every
computation lives in the core."""
