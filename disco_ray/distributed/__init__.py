"""The Ray layer: model-hosting actors, their scheduler, the per-model output cache, and the
Ray Data disagreement reduction. It orchestrates only; every computation lives in the core."""
