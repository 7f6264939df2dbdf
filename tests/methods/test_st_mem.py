"""ST-MEM and its frozen-encoder variants (methods/st_mem.py)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from ecgbench.core.contracts import NotApplicable
from ecgbench.methods.st_mem import StMem, StMemTriplet, StMemVqvae, normalised_patches
from ecgbench.models.encoders import count_parameters

pytestmark = pytest.mark.usefixtures("one_torch_thread")

VIT_B = 86e6  # ViT-B/16 (Dosovitskiy et al. 2021): "86M" parameters


def smoke(cls, **overrides):
    config = dataclasses.replace(cls.Config(), **{**cls.preset_overrides("smoke"), **overrides})
    torch.manual_seed(0)
    return cls(config)


def test_paper_preset_is_the_papers_setting_with_a_vit_b_encoder():
    c = StMem.Config()
    assert (len(c.leads), c.fs, c.n_samples, c.patch_size) == (12, 250, 2250, 75)
    assert (c.embed_dim, c.depth, c.heads, c.embed_dim * c.mlp_ratio) == (768, 12, 12, 3072)
    assert (c.decoder_dim, c.decoder_depth, c.mask_ratio) == (256, 4, 0.75)
    assert (c.optimizer, c.betas, c.lr) == ("adamw", (0.9, 0.95), 1.5e-4 * c.batch_size / 256)
    with torch.device("meta"):
        method = StMem(c)
    n_encoder = count_parameters(method.encoder)
    assert abs(n_encoder - VIT_B) / VIT_B < 0.02, f"{n_encoder:,} vs ViT-B {VIT_B:,.0f}"


def test_every_lead_loses_the_same_number_of_patches_at_different_places():
    """At the paper's token grid (the smoke preset keeps it: 30 patches of 75 samples, ratio
    0.75) the authors' code keeps int(30 * 0.25) = 7 patches a lead: 23 masked."""
    method = smoke(StMem).train()
    c = method.config
    assert (c.n_samples, c.patch_size, c.mask_ratio) == (2250, 75, 0.75) == (
        StMem.Config().n_samples, StMem.Config().patch_size, StMem.Config().mask_ratio)
    x = method.encoder.preprocess(torch.randn(4, 12, 2250))
    prediction, mask = method.reconstruct(x)
    assert prediction.shape == (4 * 12, 30, 75) and mask.shape == (4 * 12, 30)
    assert (mask.sum(dim=1) == 23).all()  # 30 - int(30 * 0.25) per lead, as the reference code
    per_lead = mask.reshape(4, 12, 30)
    assert not all(torch.equal(per_lead[0, 0], per_lead[0, lead]) for lead in range(1, 12))


def test_vqvae_decoder_is_the_reports_with_its_43_1m_parameters():
    """The report prints Linear 512->768, LayerNorm, ReLU, Dropout 0.1, Linear 768->1536, ReLU,
    Linear 1536->27000: 43,075,704 parameters in the decoder alone (43.1M)."""
    with torch.device("meta"):
        method = StMemVqvae(StMemVqvae.Config())
    layers = [type(m).__name__ for m in method.decoder]
    assert layers == ["Linear", "LayerNorm", "ReLU", "Dropout", "Linear", "ReLU", "Linear"]
    shapes = [(m.in_features, m.out_features) for m in method.decoder if isinstance(m, torch.nn.Linear)]
    assert shapes == [(512, 768), (768, 1536), (1536, 27000)]
    assert method.decoder[3].p == 0.1
    n = count_parameters(method.decoder)
    assert abs(n - 43.1e6) / 43.1e6 < 0.01, f"{n:,}"


def test_normalised_patch_targets():
    target = normalised_patches(torch.randn(2, 12, 2250) * 7 + 3, 75)
    assert target.shape == (24, 30, 75)
    assert torch.allclose(target.mean(-1), torch.zeros(24, 30), atol=1e-5)
    assert torch.allclose(target.std(-1), torch.ones(24, 30), atol=1e-3)


def test_embedding_is_invariant_to_offset_and_scale_through_the_preprocessing():
    method = smoke(StMem).eval()
    x = torch.randn(2, 12, 2250)
    assert torch.allclose(method.embed(x), method.embed(5.0 * x + 2.0), atol=1e-4)


def _pretrained_base() -> StMem:
    base = smoke(StMem)
    with torch.no_grad():
        for p in base.encoder.parameters():
            p.add_(0.1)  # distinct from any fresh initialisation
    return base


@pytest.mark.parametrize("cls", [StMemTriplet, StMemVqvae])
def test_variants_take_over_and_freeze_the_base_encoder(cls):
    base = _pretrained_base()
    method = smoke(cls)
    method.init_from_base(base)
    if cls.uses_labels:
        method.setup_task("multiclass", 3)
    backbone = method.encoder.backbone
    for mine, theirs in zip(backbone.state_dict().values(), base.encoder.state_dict().values()):
        assert torch.equal(mine, theirs)
    trainable = {id(p) for p in method.trainable_parameters()}
    assert trainable and not any(id(p) in trainable for p in backbone.parameters())
    before = [p.detach().clone() for p in backbone.parameters()]
    optimizer = method.configure_optimizer()
    batch = {"signal": torch.randn(8, 12, 2250), "label": torch.arange(8) % 3}
    for _ in range(2):
        loss = method.train().training_step(batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert all(torch.equal(b, p) for b, p in zip(before, backbone.parameters()))
    assert not backbone.training  # kept in eval mode while the head trains


def test_variant_refuses_a_base_of_another_size():
    method = smoke(StMemTriplet)
    other = smoke(StMem, embed_dim=16, heads=2)
    with pytest.raises(ValueError, match="does not fit"):
        method.init_from_base(other)


def test_triplet_variant_embedding_tasks_and_labels():
    method = smoke(StMemTriplet)
    assert method.uses_labels and method.base_method == "st-mem"
    assert StMemTriplet.Config().head_dim == 64
    z = method.eval().embed(torch.randn(5, 12, 2250))
    assert z.shape == (5, method.config.head_dim)
    assert torch.allclose(z.norm(dim=1), torch.ones(5), atol=1e-5)
    with pytest.raises(NotApplicable, match="regression"):
        method.setup_task("regression", 1)
    with pytest.raises(KeyError, match="label"):
        method.training_step({"signal": torch.randn(4, 12, 2250)})
    method.setup_task("multilabel", 4)
    labels = torch.tensor([[1, 0, 0, 1], [1, 0, 0, 1], [0, 1, 0, 0], [0, 1, 0, 0]]).float()
    out = method.train().training_step({"signal": torch.randn(4, 12, 2250), "label": labels})
    assert out["triplets"].item() == 4 and torch.isfinite(out["loss"])


def test_triplet_head_separates_two_diagnoses_on_a_fixed_batch():
    method = smoke(StMemTriplet, lr=3e-3)
    method.setup_task("multiclass", 2)
    x = torch.randn(16, 12, 2250)
    labels = torch.arange(16) % 2
    optimizer = method.configure_optimizer()
    losses = []
    for _ in range(30):
        torch.manual_seed(0)
        loss = method.train().training_step({"signal": x, "label": labels})["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_vqvae_reports_codebook_use_and_flags_collapse_without_crashing():
    method = smoke(StMemVqvae)
    assert (StMemVqvae.Config().latent_dim, StMemVqvae.Config().n_codes) == (512, 1024)
    batch = {"signal": torch.randn(16, 12, 2250)}
    out = method.train().training_step(batch)
    assert {"code_perplexity", "codebook_usage", "codebook_collapsed"} <= set(out)
    assert 1.0 <= out["code_perplexity"].item() <= 16.0
    with torch.no_grad():
        method.encoder.head.codebook.copy_(torch.zeros_like(method.encoder.head.codebook))
    collapsed = method.training_step(batch)
    assert collapsed["code_perplexity"].item() == pytest.approx(1.0)
    assert collapsed["codebook_collapsed"].item() == 1.0
    assert torch.isfinite(collapsed["loss"])
    z = method.eval().embed(batch["signal"])  # the quantised code: all identical now
    assert z.shape == (16, method.config.latent_dim) and torch.allclose(z, z[:1].expand_as(z))
