"""Published encoder checkpoints: read the authors' files and map their parameter names onto
:class:`ecgbench.models.vit.LeadTimeViT`, strictly (no key left over on either side, equal
shapes).

Two formats are known, each the encoder state dict the authors' code saves:

* ``st-mem``: Na et al.'s ST_MEM_ViT (github.com/bakqui/ST-MEM, models/encoder/st_mem_vit.py
  and models/encoder/vit.py; released as ``{"model": <encoder state dict>, ...}``);
* ``ecg-jepa``: Kim's MaskTransformer (github.com/sehunfromdaegu/ECG_JEPA, ecg_jepa.py; saved
  as ``{"encoder": <state dict>, "epoch": ...}``), the additive sine/cosine position variant.

The tables below were written from reading those files (names and shapes only). Every error
is one line that names the file, raised before any work (:func:`check_published` runs when
the method's config is validated).
"""

from __future__ import annotations

import functools
import pickle
import re
from pathlib import Path

import torch
from torch import Tensor, nn

from ecgbench.core.config import ConfigError

# (pattern over the authors' key, our key); a key no pattern matches is left over.
_BLOCKS = r"transformer.layers.\1"
RULES: dict[str, list[tuple[str, str]]] = {
    "st-mem": [
        (r"to_patch_embedding\.1\.(weight|bias)", r"patch_norm_in.\1"),
        (r"to_patch_embedding\.2\.(weight|bias)", r"patch_embed.\1"),
        (r"to_patch_embedding\.3\.(weight|bias)", r"patch_norm_out.\1"),
        (r"pos_embedding", "pos_embed"),
        (r"sep_embedding", "sep_token"),
        (r"lead_embeddings\.(\d+)", r"lead_embed.\1"),  # stacked into one (leads, D) table
        (r"block(\d+)\.attn\.norm\.(weight|bias)", _BLOCKS + r".norm1.\2"),
        (r"block(\d+)\.attn\.fn\.to_qkv\.(weight|bias)", _BLOCKS + r".self_attn.in_proj_\2"),
        (r"block(\d+)\.attn\.fn\.to_out\.0\.(weight|bias)", _BLOCKS + r".self_attn.out_proj.\2"),
        (r"block(\d+)\.ff\.norm\.(weight|bias)", _BLOCKS + r".norm2.\2"),
        (r"block(\d+)\.ff\.fn\.net\.0\.(weight|bias)", _BLOCKS + r".linear1.\2"),
        (r"block(\d+)\.ff\.fn\.net\.3\.(weight|bias)", _BLOCKS + r".linear2.\2"),
        (r"norm\.(weight|bias)", r"transformer.norm.\1"),
    ],
    "ecg-jepa": [
        (r"W_P\.(weight|bias)", r"patch_embed.\1"),
        (r"pos_embed", "pos_table"),  # (leads x patches, D) -> (leads, patches, D)
        (r"encoder_blocks\.blocks\.(\d+)\.norm1\.(weight|bias)", _BLOCKS + r".norm1.\2"),
        (r"encoder_blocks\.blocks\.(\d+)\.attn\.qkv\.(weight|bias)", _BLOCKS + r".self_attn.in_proj_\2"),
        (r"encoder_blocks\.blocks\.(\d+)\.attn\.proj\.(weight|bias)", _BLOCKS + r".self_attn.out_proj.\2"),
        (r"encoder_blocks\.blocks\.(\d+)\.norm2\.(weight|bias)", _BLOCKS + r".norm2.\2"),
        (r"encoder_blocks\.blocks\.(\d+)\.mlp\.fc1\.(weight|bias)", _BLOCKS + r".linear1.\2"),
        (r"encoder_blocks\.blocks\.(\d+)\.mlp\.fc2\.(weight|bias)", _BLOCKS + r".linear2.\2"),
        (r"norm\.(weight|bias)", r"transformer.norm.\1"),
    ],
}
# A key only that format has: how a file of the other method is recognised.
MARKERS: dict[str, str] = {"st-mem": "to_patch_embedding.2.weight", "ecg-jepa": "W_P.weight"}
STATE_KEYS = ("model", "encoder", "state_dict", "model_state_dict")


def _is_state_dict(value: object) -> bool:
    return isinstance(value, dict) and bool(value) and all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in value.items())


def unwrap(loaded: object, path: Path) -> dict[str, Tensor]:
    """The state dict itself, or the one under ``model`` / ``encoder`` / ``state_dict``."""
    if _is_state_dict(loaded):
        state = loaded
    else:
        inner = [loaded[k] for k in STATE_KEYS if isinstance(loaded, dict) and _is_state_dict(loaded.get(k))]
        if len(inner) != 1:
            raise ConfigError(f"{path}: holds no state dict (a dict of tensors, or one under "
                              f"{'/'.join(STATE_KEYS)})")
        state = inner[0]
    # DistributedDataParallel saves every name behind "module."
    return {k.removeprefix("module."): v for k, v in state.items()}


@functools.lru_cache(maxsize=4)
def _read(path: str, stamp: tuple[int, int]) -> tuple[dict[str, Tensor], str]:
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, ValueError, KeyError, pickle.UnpicklingError) as error:
        # a truncated zip, a pickle with code in it, not torch at all
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"{path}: not a readable torch checkpoint ({type(error).__name__}: "
                          f"{message[:120]})") from None
    from ecgbench.data.datasets.download import sha256_of  # http imports only when a file is loaded

    return unwrap(loaded, Path(path)), sha256_of(Path(path))


def read_checkpoint(path: str | Path) -> tuple[dict[str, Tensor], str]:
    """(state dict, sha256 of the file); cached per path, size and modification time."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"{p}: no such checkpoint file")
    stat = p.stat()
    return _read(str(p), (stat.st_size, stat.st_mtime_ns))


def check_format(state: dict[str, Tensor], fmt: str, path: Path) -> None:
    """Refuse a file of another method, or of none we know."""
    if MARKERS[fmt] in state:
        return
    if f"encoder.{MARKERS[fmt]}" in state:
        raise ConfigError(f"{path}: a whole {fmt} model (encoder.* and more); give the encoder-only "
                          f"file the authors released beside it")
    other = [name for name, key in MARKERS.items() if key in state]
    if other:
        raise ConfigError(f"{path}: an encoder checkpoint of {other[0]} ({MARKERS[other[0]]}), "
                          f"not of {fmt}")
    raise ConfigError(f"{path}: not a {fmt} encoder checkpoint (no {MARKERS[fmt]}; it has e.g. "
                      f"{', '.join(sorted(state)[:3])})")


def rename(state: dict[str, Tensor], fmt: str) -> tuple[dict[str, Tensor], list[str]]:
    """The authors' names mapped to ours; returns (mapped, keys no rule matched)."""
    mapped, left = {}, []
    for key, value in state.items():
        for pattern, target in RULES[fmt]:
            if re.fullmatch(pattern, key):
                mapped[re.sub(pattern, target, key)] = value
                break
        else:
            left.append(key)
    return mapped, left


def reshape(mapped: dict[str, Tensor], ours: dict[str, Tensor]) -> dict[str, Tensor]:
    """Bring the authors' layouts to ours: per-lead vectors stacked, position tables reshaped,
    and a zero qkv bias where theirs has none (the same attention as no bias)."""
    out = {k: v for k, v in mapped.items() if not re.fullmatch(r"lead_embed\.\d+", k)}
    leads = sorted((int(k.split(".")[1]), v) for k, v in mapped.items() if re.fullmatch(r"lead_embed\.\d+", k))
    if leads:
        if [i for i, _ in leads] != list(range(len(leads))):
            raise ValueError("lead_embeddings are not numbered 0..n-1")
        out["lead_embed"] = torch.stack([v for _, v in leads])
    for key in ("pos_embed", "pos_table"):
        if key in out and key in ours and out[key].numel() == ours[key].numel():
            out[key] = out[key].reshape(ours[key].shape)
    for key, value in ours.items():
        weight = key.replace("in_proj_bias", "in_proj_weight")
        if key.endswith("in_proj_bias") and key not in out and weight in out:
            out[key] = torch.zeros_like(value)
    return out


def map_strict(state: dict[str, Tensor], fmt: str, encoder: nn.Module, path: Path,
               hint: str) -> dict[str, Tensor]:
    """The authors' state dict as ``encoder``'s, or a one-line error naming the first
    difference: a key left over on either side or a shape. ``hint`` says which settings fix it."""
    check_format(state, fmt, path)
    mapped, left = rename(state, fmt)
    if left:
        raise ConfigError(f"{path}: {len(left)} {fmt} key(s) with no place in our encoder, "
                          f"e.g. {left[0]} ({hint})")
    ours = encoder.state_dict()
    try:
        mapped = reshape(mapped, ours)
    except ValueError as error:
        raise ConfigError(f"{path}: {error}") from None
    missing, extra = sorted(set(ours) - set(mapped)), sorted(set(mapped) - set(ours))
    if extra or missing:
        what = f"has {extra[0]} that our encoder lacks" if extra else f"lacks our {missing[0]}"
        raise ConfigError(f"{path}: {what} ({hint})")
    for key, value in mapped.items():
        if tuple(value.shape) != tuple(ours[key].shape):
            raise ConfigError(f"{path}: {key} is {tuple(value.shape)} in the checkpoint, "
                              f"{tuple(ours[key].shape)} in our encoder ({hint})")
    return mapped


def load_published(encoder: nn.Module, path: str | Path, fmt: str, hint: str) -> str:
    """Load the authors' file into ``encoder`` strictly; returns the file's sha256."""
    state, digest = read_checkpoint(path)
    mapped = map_strict(state, fmt, encoder, Path(path), hint)
    encoder.load_state_dict({k: v.to(torch.float32) for k, v in mapped.items()}, strict=True)
    return digest


def check_published(build_encoder, path: str | Path, fmt: str, hint: str) -> str:
    """Everything :func:`load_published` checks, on an encoder built on the meta device (no
    memory, no copy); returns the file's sha256."""
    state, digest = read_checkpoint(path)
    with torch.device("meta"):
        encoder = build_encoder()
    map_strict(state, fmt, encoder, Path(path), hint)
    return digest


def resolve_init(config, fmt: str, expected_input: dict[str, object], layout: dict[str, object],
                 build_encoder) -> None:
    """A method config's ``init_from``, checked before any work: the file exists, loads, is a
    ``fmt`` encoder whose every name and shape fits ``build_encoder(config)``; the input it
    expects (``expected_input``) is the config's. Sets the authors' ``layout`` options and
    ``init_sha256`` (the file's hash, part of the run id) on ``config``."""
    path = str(config.init_from)
    if not path:
        if config.init_sha256:
            raise ConfigError(f"init_sha256={config.init_sha256!r}: it is the hash of init_from's "
                              "file, set from the file, not by hand")
        return
    if not type(config).takes_init:
        raise ConfigError(f"init_from={path}: this variant takes its encoder from its base run; "
                          f"set the base method's init_from instead")
    for name, value in expected_input.items():
        have = getattr(config, name)
        if (tuple(have) if isinstance(have, (list, tuple)) else have) != value:
            raise ConfigError(f"{path}: the {fmt} checkpoint expects {name}={value!r}, the config "
                              f"has {have!r} (leave {name} at its default to load it)")
    for name, value in layout.items():
        setattr(config, name, value)
    hint = ("set embed_dim, depth, mlp_ratio and patch_size to the checkpoint's: --preset paper "
            "for the released ViT-B")
    config.init_sha256 = check_published(lambda: build_encoder(config), path, fmt, hint)


def load_init(encoder: nn.Module, config, fmt: str) -> None:
    """Load ``config.init_from`` into ``encoder`` (a no-op without one); the file must still
    be the one whose hash the config (and so the run id) carries."""
    if not config.init_from:
        return
    hint = "set embed_dim, depth, mlp_ratio and patch_size to the checkpoint's"
    digest = load_published(encoder, config.init_from, fmt, hint)
    if config.init_sha256 and digest != config.init_sha256:
        raise ConfigError(f"{config.init_from}: changed since the run was configured (sha256 "
                          f"{digest[:12]}, expected {config.init_sha256[:12]})")
