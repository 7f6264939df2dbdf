"""Shared backbones, one module per family; every method builds its encoder from here, never from
a private copy.

Encoder contract: an ``nn.Module`` with an int attribute ``embedding_dim`` whose
``forward(x)`` maps ``(B, leads, T)`` to pooled features ``(B, embedding_dim)``. Heads,
projectors and predictors belong to the methods; an encoder ends at its global pooling.

* :class:`TransformCNN`: the signal-transformation recognition CNN of Sarkar & Etemad (2020),
  with optional residual connections (the residual ablation of the seed report).
* :class:`ResNet1d`: a standard 1-D ResNet with BasicBlocks, used by SimCLR, BYOL and the
  random-init control.
* :class:`ClocsCNN`: the 3-layer CNN of CLOCS (Kiyasseh et al. 2021), single-lead segments.
* :class:`TransformerEncoder1d` and :func:`sinusoidal_positions`: pre-norm transformer blocks
  over token sequences, shared by the masked-modelling methods (Ti-MAE, ...).
* :class:`LocalLeadEncoder`: NERULA's convolutional transformer with latent masking at every layer.

Every name stays importable from ``ecgbench.models.encoders``.
"""

from __future__ import annotations

from torch import nn

from ecgbench.models.encoders.clocs_cnn import ClocsCNN
from ecgbench.models.encoders.local_lead import (
    LOCAL_LEAD_PRESETS,
    ConvAttention,
    DepthwiseSeparableConv1d,
    LocalLeadConfig,
    LocalLeadEncoder,
    LocalLeadStemBlock,
    LocalLeadTransformerLayer,
    MaskedConv1d,
    local_lead_from_config,
    local_window_attention,
)
from ecgbench.models.encoders.resnet import (
    RESNET1D_PRESETS,
    BasicBlock1d,
    Bottleneck1d,
    ResNet1d,
    ResNet1dConfig,
    resnet1d_from_config,
)
from ecgbench.models.encoders.transform_cnn import TransformCNN
from ecgbench.models.encoders.transformer import TransformerEncoder1d, _init_transformer_weights, sinusoidal_positions

__all__ = [
    "BasicBlock1d", "Bottleneck1d", "ClocsCNN", "ConvAttention", "DepthwiseSeparableConv1d",
    "LOCAL_LEAD_PRESETS", "LocalLeadConfig", "LocalLeadEncoder", "LocalLeadStemBlock",
    "LocalLeadTransformerLayer", "MaskedConv1d", "RESNET1D_PRESETS", "ResNet1d", "ResNet1dConfig",
    "TransformCNN", "TransformerEncoder1d", "_init_transformer_weights", "count_parameters",
    "local_lead_from_config", "local_window_attention", "paper_sizes", "resnet1d_from_config",
    "sinusoidal_positions",
]


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def paper_sizes() -> dict[str, int]:
    """Parameter counts of the paper-size encoders (for docs and reports)."""
    return {
        "TransformCNN": count_parameters(TransformCNN()),
        "TransformCNN-res123": count_parameters(TransformCNN(residual_blocks=(1, 2, 3))),
        "ResNet1d(12 leads)": count_parameters(ResNet1d()),
    }


