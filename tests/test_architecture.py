"""The algorithm core never imports ray, torch or vllm."""

import subprocess
import sys

CORE = ["disco_ray", "disco_ray.outputs", "disco_ray.io", "disco_ray.disagreement",
        "disco_ray.selection", "disco_ray.signatures", "disco_ray.metamodels",
        "disco_ray.condensed", "disco_ray.evaluation", "disco_ray.methods", "disco_ray.cli"]


def test_core_imports_no_heavy_framework():
    code = ("import sys\n" + "".join(f"import {m}\n" for m in CORE)
            + "print(sorted(m for m in ('ray', 'torch', 'vllm', 'transformers') "
              "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"
