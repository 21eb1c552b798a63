"""Weight edits that turn one causal LM into a checkpoint sweep: the degradations teams compare.

Each edit changes a Llama-style `transformers` model in place, deterministically (no random
numbers), and keeps it a plain model of the same class that `save_pretrained` writes and any
loader reads:

- `fake_quantize`: round-to-nearest weight quantization (asymmetric min-max, per group of
  `group_size` input columns or per output row), stored dequantised;
- `magnitude_prune`: zero the smallest-magnitude share of each weight matrix;
- `drop_layers`: remove decoder layers;
- `interpolate`: move every weight part of the way towards another model's.

The matrices edited are the decoder layers' linear weights (attention and MLP projections);
embeddings, norms and the output head stay as they are, as in weight-only quantization.
"""

from __future__ import annotations

from typing import Iterable, Iterator, Mapping


def decoder_linear_weights(model) -> Iterator[tuple[str, "torch.Tensor"]]:  # noqa: F821
    """(name, weight) of every linear layer inside the decoder layers."""
    import torch

    for name, module in model.model.layers.named_modules():
        if isinstance(module, torch.nn.Linear):
            yield name, module.weight


def quantize_tensor(weight, bits: int, group_size: int | None):
    """`weight` (out x in) rounded to `bits`-bit integers per group of `group_size` input
    columns (None: one group per output row) with min-max scale and zero point, dequantised."""
    import torch

    if not 1 <= bits <= 16:
        raise ValueError(f"bits={bits}: choose a bit width between 1 and 16")
    rows, cols = weight.shape
    size = cols if group_size is None else group_size
    if cols % size:
        raise ValueError(f"group_size={group_size} does not divide the {cols} input columns. "
                         f"Fix: choose a divisor of {cols}")
    w = weight.detach().to(torch.float32).reshape(rows, cols // size, size)
    low, high = w.amin(dim=-1, keepdim=True), w.amax(dim=-1, keepdim=True)
    levels = 2 ** bits - 1
    scale = torch.where(high > low, (high - low) / levels, torch.ones_like(high))
    zero = torch.round(-low / scale)
    q = torch.clamp(torch.round(w / scale) + zero, 0, levels)
    return ((q - zero) * scale).reshape(rows, cols).to(weight.dtype)


def fake_quantize(model, bits: int, group_size: int | None = None):
    """Round every decoder linear weight to `bits` bits (see `quantize_tensor`); returns the
    model."""
    import torch

    with torch.no_grad():
        for _, weight in decoder_linear_weights(model):
            weight.copy_(quantize_tensor(weight, bits, group_size))
    return model


def magnitude_prune(model, sparsity: float):
    """Zero the `sparsity` share of entries with the smallest magnitude in each decoder linear
    weight (ties at the threshold are zeroed too); returns the model."""
    import torch

    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity={sparsity}: choose a share in [0, 1)")
    with torch.no_grad():
        for _, weight in decoder_linear_weights(model):
            count = int(round(sparsity * weight.numel()))
            if count == 0:
                continue
            threshold = weight.abs().flatten().kthvalue(count).values
            weight.masked_fill_(weight.abs() <= threshold, 0.0)
    return model


def drop_layers(model, indices: Iterable[int]):
    """Remove the decoder layers at `indices` (0-based); the config and each remaining
    attention layer's index follow. Returns the model."""
    import torch

    layers = model.model.layers
    drop = set(indices)
    bad = sorted(i for i in drop if not 0 <= i < len(layers))
    if bad or len(drop) >= len(layers):
        raise ValueError(f"cannot drop layers {sorted(drop)} of a {len(layers)}-layer model. "
                         "Fix: give distinct indices in range and keep at least one layer")
    kept = [layer for i, layer in enumerate(layers) if i not in drop]
    for new_index, layer in enumerate(kept):
        if hasattr(layer.self_attn, "layer_idx"):
            layer.self_attn.layer_idx = new_index
    model.model.layers = torch.nn.ModuleList(kept)
    model.config.num_hidden_layers = len(kept)
    layer_types = getattr(model.config, "layer_types", None)
    if layer_types is not None:
        model.config.layer_types = [t for i, t in enumerate(layer_types) if i not in drop]
    return model


def interpolate(model, towards: Mapping[str, "torch.Tensor"], alpha: float):  # noqa: F821
    """Set every parameter to (1 - alpha) * its value + alpha * `towards[name]` (a state dict of
    a model with the same shapes); returns the model."""
    import torch

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha={alpha}: choose a weight in [0, 1]")
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name not in towards or towards[name].shape != param.shape:
                raise ValueError(f"cannot interpolate '{name}': the other model has no "
                                 "parameter of that name and shape. Fix: interpolate between "
                                 "models of one architecture")
            param.lerp_(towards[name].to(param.dtype), alpha)
    return model
