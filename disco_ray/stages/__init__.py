"""The pipeline's stages (`disco_ray.pipeline` runs them in order)."""
