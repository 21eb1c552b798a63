"""disco_ray: DISCO benchmark condensation on Ray.

Predict a model's full-benchmark score from its outputs on ~100 samples where reference models
disagree most. The algorithm core (this package's top-level modules) is numpy / scikit-learn only;
backends and the Ray layer are imported lazily.
"""

from disco_ray.outputs import ModelOutputs, OutputsError

__version__ = "0.1.0"
__all__ = ["ModelOutputs", "OutputsError", "__version__"]
