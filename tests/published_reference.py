"""The authors' encoder state dicts, built from the names and shapes read in their code
(bakqui/ST-MEM: models/encoder/st_mem_vit.py with models/encoder/vit.py's TransformerBlock;
sehunfromdaegu/ECG_JEPA: ecg_jepa.py, MaskTransformer with pos_type='sincos' and
qkv_bias=False), random values: what a released checkpoint holds, at any size."""

from __future__ import annotations

import torch


def st_mem_reference(width: int, depth: int, mlp: int, n_leads: int = 12, patch: int = 75,
                     n_patches: int = 30) -> dict[str, torch.Tensor]:
    """ST_MEM_ViT's encoder state dict (num_classes=None: no head), random values."""
    g = torch.Generator().manual_seed(0)
    shapes = {
        "to_patch_embedding.1.weight": (patch,), "to_patch_embedding.1.bias": (patch,),
        "to_patch_embedding.2.weight": (width, patch), "to_patch_embedding.2.bias": (width,),
        "to_patch_embedding.3.weight": (width,), "to_patch_embedding.3.bias": (width,),
        "pos_embedding": (1, n_patches + 2, width), "sep_embedding": (width,),
        "norm.weight": (width,), "norm.bias": (width,),
    }
    shapes |= {f"lead_embeddings.{i}": (width,) for i in range(n_leads)}
    for i in range(depth):
        b = f"block{i}"
        shapes |= {f"{b}.attn.norm.weight": (width,), f"{b}.attn.norm.bias": (width,),
                   f"{b}.attn.fn.to_qkv.weight": (3 * width, width), f"{b}.attn.fn.to_qkv.bias": (3 * width,),
                   f"{b}.attn.fn.to_out.0.weight": (width, width), f"{b}.attn.fn.to_out.0.bias": (width,),
                   f"{b}.ff.norm.weight": (width,), f"{b}.ff.norm.bias": (width,),
                   f"{b}.ff.fn.net.0.weight": (mlp, width), f"{b}.ff.fn.net.0.bias": (mlp,),
                   f"{b}.ff.fn.net.3.weight": (width, mlp), f"{b}.ff.fn.net.3.bias": (width,)}
    return {k: 0.1 * torch.randn(s, generator=g) for k, s in shapes.items()}


def ecg_jepa_reference(width: int, depth: int, mlp: int, c: int = 8, p: int = 50,
                       t: int = 50) -> dict[str, torch.Tensor]:
    """MaskTransformer's state dict (pos_type='sincos', qkv_bias=False), random values."""
    g = torch.Generator().manual_seed(1)
    shapes = {"W_P.weight": (width, t), "W_P.bias": (width,), "pos_embed": (c * p, width),
              "norm.weight": (width,), "norm.bias": (width,)}
    for i in range(depth):
        b = f"encoder_blocks.blocks.{i}"
        shapes |= {f"{b}.norm1.weight": (width,), f"{b}.norm1.bias": (width,),
                   f"{b}.attn.qkv.weight": (3 * width, width),
                   f"{b}.attn.proj.weight": (width, width), f"{b}.attn.proj.bias": (width,),
                   f"{b}.norm2.weight": (width,), f"{b}.norm2.bias": (width,),
                   f"{b}.mlp.fc1.weight": (mlp, width), f"{b}.mlp.fc1.bias": (mlp,),
                   f"{b}.mlp.fc2.weight": (width, mlp), f"{b}.mlp.fc2.bias": (width,)}
    return {k: 0.1 * torch.randn(s, generator=g) for k, s in shapes.items()}
