"""Published checkpoints (ecgbench.models.published): the authors' parameter names and shapes
load strictly into our ST-MEM and ECG-JEPA encoders, and bad files are one-line errors.

The reference state dicts (tests/published_reference.py) carry the authors' names and shapes
with random values, at the smoke preset's small sizes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from published_reference import ecg_jepa_reference, st_mem_reference

from ecgbench.core.config import ConfigError, apply_overrides
from ecgbench.methods.ecg_jepa import EcgJepa, EcgJepaHybrid
from ecgbench.methods.st_mem import StMem, StMemTriplet
from ecgbench.models.vit import cross_pattern_mask

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def smoke_config(cls, **overrides):
    """The smoke preset's config with ``overrides`` applied as ``--set`` would (validated)."""
    return apply_overrides(cls.Config(), {**cls.preset_overrides("smoke"), **overrides}, cls.name)


def save(tmp_path: Path, name: str, obj) -> Path:
    path = tmp_path / name
    torch.save(obj, path)
    return path


@pytest.fixture
def st_mem_file(tmp_path):
    c = StMem.Config(**StMem.presets["smoke"])
    return save(tmp_path, "st_mem_vit_smoke.pth",
                {"epoch": 799, "model": st_mem_reference(c.embed_dim, c.depth, int(c.embed_dim * c.mlp_ratio))})


@pytest.fixture
def jepa_file(tmp_path):
    c = EcgJepa.Config(**EcgJepa.presets["smoke"])
    return save(tmp_path, "jepa_epoch100.pth",
                {"encoder": ecg_jepa_reference(c.embed_dim, c.depth, int(c.embed_dim * c.mlp_ratio)), "epoch": 99})


def embed(method, n_leads: int, n_samples: int) -> torch.Tensor:
    x = torch.randn(2, n_leads, n_samples, generator=torch.Generator().manual_seed(2))
    return method.eval().embed(x)


@pytest.mark.parametrize("cls, fixture, fmt", [(StMem, "st_mem_file", "st-mem"), (EcgJepa, "jepa_file", "ecg-jepa")])
def test_the_authors_names_load_strictly_and_the_forward_pass_uses_them(cls, fixture, fmt, request, tmp_path):
    path = request.getfixturevalue(fixture)
    config = smoke_config(cls, init_from=str(path))
    assert len(config.init_sha256) == 64
    reference = torch.load(path, weights_only=True)
    key = "model" if fmt == "st-mem" else "encoder"
    torch.manual_seed(0)
    method = cls(config)
    # every value of the file is in the encoder (under our name), and nothing else
    ours = set(method.encoder.state_dict())
    assert len(ours) == len(reference[key]) - (11 if fmt == "st-mem" else 0) + (config.depth if fmt == "ecg-jepa" else 0)
    patch = method.encoder.patch_embed.weight
    name = "to_patch_embedding.2.weight" if fmt == "st-mem" else "W_P.weight"
    assert torch.equal(patch, reference[key][name])
    before = embed(method, len(config.leads), config.n_samples)
    # a changed weight in the file changes the embedding: the forward pass uses the loaded weights
    reference[key]["norm.bias"] += 1.0
    changed = save(tmp_path, "changed.pth", reference)
    torch.manual_seed(0)
    other = cls(smoke_config(cls, init_from=str(changed)))
    assert not torch.allclose(before, embed(other, len(config.leads), config.n_samples))


def test_st_mem_loads_its_layout_lead_table_and_positions(st_mem_file):
    config = smoke_config(StMem, init_from=str(st_mem_file))
    assert config.patch_norm and config.pooled_norm
    encoder = StMem(config).encoder
    state = torch.load(st_mem_file, weights_only=True)["model"]
    assert torch.equal(encoder.lead_embed[5], state["lead_embeddings.5"])
    assert torch.equal(encoder.pos_embed, state["pos_embedding"][0])
    assert torch.equal(encoder.transformer.layers[0].self_attn.in_proj_bias, state["block0.attn.fn.to_qkv.bias"])


def test_st_mem_pooled_norm_is_the_authors_representation(st_mem_file):
    """Their forward_encoding: blocks, [SEP] dropped, mean over leads and patches, then norm."""
    encoder = StMem(smoke_config(StMem, init_from=str(st_mem_file))).encoder.eval()
    x = torch.randn(2, 12, 2250)
    with torch.no_grad():
        tokens = encoder.encode(encoder.tokens(encoder.preprocess(x)), normalize=False)
        expected = torch.nn.functional.layer_norm(tokens.mean(dim=(1, 2)), (tokens.shape[-1],),
                                                  encoder.transformer.norm.weight, encoder.transformer.norm.bias)
        assert torch.allclose(encoder(x), expected, atol=1e-6)


def test_ecg_jepa_keeps_the_authors_position_table_and_a_zero_qkv_bias(jepa_file):
    config = smoke_config(EcgJepa, init_from=str(jepa_file))
    assert config.readd_positions and config.stored_positions
    method = EcgJepa(config)
    state = torch.load(jepa_file, weights_only=True)["encoder"]
    assert torch.equal(method.encoder.pos_table.reshape(-1, config.embed_dim), state["pos_embed"])
    assert not method.encoder.transformer.layers[0].self_attn.in_proj_bias.any()
    # the target encoder starts as the loaded context encoder
    assert torch.equal(method.target_encoder.patch_embed.weight, state["W_P.weight"])
    assert "pos_table" in method.encoder.state_dict(), "the stored table survives our own checkpoint"


def test_ecg_jepa_readds_positions_before_every_block(jepa_file):
    """The authors' Encoder_Block: block(x + pos) for every block, x = W_P(patches) at first."""
    encoder = EcgJepa(smoke_config(EcgJepa, init_from=str(jepa_file))).encoder.eval()
    x = torch.randn(2, 8, 2500)
    with torch.no_grad():
        h = encoder.patch_embed(x.reshape(2, 8 * 50, 50))
        pos = encoder.pos_table.reshape(-1, h.shape[-1])
        leads, times = torch.arange(8).repeat_interleave(50), torch.arange(50).repeat(8)
        attn = cross_pattern_mask(leads, times)
        for layer in encoder.transformer.layers:
            h = layer(h + pos, src_mask=attn)
        expected = encoder.transformer.norm(h).mean(dim=1)
        assert torch.allclose(encoder(x), expected, atol=1e-5)


def test_the_run_key_names_the_file_hash_and_old_keys_stay(st_mem_file):
    from ecgbench.core.config import RunConfig
    from ecgbench.models.method import run_key_config

    loaded = smoke_config(StMem, init_from=str(st_mem_file))
    plain = smoke_config(StMem)
    assert "init_from" not in run_key_config(loaded) and "init_sha256" in run_key_config(loaded)
    assert set(run_key_config(plain)) == set(dataclasses.asdict(plain)) - {
        "init_from", "init_sha256", "patch_norm", "pooled_norm"}
    run = RunConfig("st-mem", 2, run_key_config(loaded), "smoke", "synth@4:train", 0)
    assert run.run_id.startswith(f"st-mem-init{loaded.init_sha256[:12]}-")


@pytest.mark.parametrize("cls", [StMem, EcgJepa])
def test_bad_files_are_one_line_errors_naming_the_file(cls, tmp_path, st_mem_file, jepa_file):
    cases = {
        tmp_path / "missing.pth": "no such checkpoint file",
        tmp_path / "damaged.pth": "not a readable torch checkpoint",
        tmp_path / "empty.pth": "holds no state dict",
        (jepa_file if cls is StMem else st_mem_file): "an encoder checkpoint of",
    }
    (tmp_path / "damaged.pth").write_bytes(st_mem_file.read_bytes()[:500])
    torch.save({"epoch": 3}, tmp_path / "empty.pth")
    for path, message in cases.items():
        with pytest.raises(ConfigError) as error:
            smoke_config(cls, init_from=str(path))
        text = str(error.value)
        assert str(path) in text and message in text and "\n" not in text, text
    whole = {f"encoder.{k}": v for k, v in torch.load(st_mem_file, weights_only=True)["model"].items()}
    if cls is StMem:
        with pytest.raises(ConfigError, match="a whole st-mem model"):
            smoke_config(cls, init_from=str(save(tmp_path, "full.pth", {"model": whole})))
    with pytest.raises(ConfigError, match="not of st-mem" if cls is StMem else "not of ecg-jepa"):
        smoke_config(cls, init_from=str(jepa_file if cls is StMem else st_mem_file))


def test_sizes_and_inputs_that_differ_from_the_checkpoint_are_refused(st_mem_file, jepa_file):
    with pytest.raises(ConfigError, match=r"st_mem_vit_smoke.pth: .*\(32, 75\) in the checkpoint, \(64, 75\)"):
        smoke_config(StMem, init_from=str(st_mem_file), embed_dim=64)
    with pytest.raises(ConfigError, match="lacks our transformer.layers.1"):
        smoke_config(StMem, init_from=str(st_mem_file), depth=2)
    with pytest.raises(ConfigError, match=r"expects fs=250, the config has 500"):
        smoke_config(StMem, init_from=str(st_mem_file), fs=500)
    with pytest.raises(ConfigError, match=r"expects leads=\('I', 'II', 'V1'"):
        smoke_config(EcgJepa, init_from=str(jepa_file), leads=("II",))
    with pytest.raises(ConfigError, match="expects cross_pattern=True"):
        smoke_config(EcgJepa, init_from=str(jepa_file), cross_pattern=False)


def test_variants_take_the_checkpoint_through_their_base(st_mem_file, jepa_file):
    with pytest.raises(ConfigError, match="set the base method's init_from"):
        smoke_config(StMemTriplet, init_from=str(st_mem_file))
    with pytest.raises(ConfigError, match="set the base method's init_from"):
        smoke_config(EcgJepaHybrid, init_from=str(jepa_file))
    with pytest.raises(ConfigError, match="not by hand"):
        smoke_config(StMem, init_sha256="abc")


def test_a_file_changed_after_configuring_is_refused(st_mem_file):
    config = smoke_config(StMem, init_from=str(st_mem_file))
    state = torch.load(st_mem_file, weights_only=True)
    state["model"]["norm.bias"] += 1
    torch.save(state, st_mem_file)
    with pytest.raises(ConfigError, match="changed since the run was configured"):
        StMem(config)
