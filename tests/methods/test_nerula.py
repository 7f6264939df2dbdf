"""NERULA and its Table-2 ablation ladder (methods/nerula.py): views, latent masking, losses."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.nn import functional as F

from ecgbench.methods.byol import BYOL
from ecgbench.methods.nerula import (
    FinalLatent,
    Nerula,
    NerulaLadderByol,
    NerulaLadderLatent,
    NerulaLadderMasking,
)
from ecgbench.models.encoders import LocalLeadEncoder, ResNet1d
from ecgbench.models.losses import huber_reconstruction, negative_cosine
from ecgbench.models.masking import complementary_patch_mask, resize_mask

pytestmark = pytest.mark.usefixtures("one_torch_thread")
LADDER = (NerulaLadderByol, NerulaLadderMasking, NerulaLadderLatent, Nerula)


def build(cls, **overrides):
    config = dataclasses.replace(cls.Config(), **{**cls.preset_overrides("smoke"), **overrides})
    torch.manual_seed(0)
    return cls(config)


def signal(method, batch: int = 6, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 1, method.config.n_samples, generator=g)  # (B, 1, T)


def test_paper_defaults():
    c = Nerula.Config()
    assert c.leads == ("II",) and c.fs == 500 and c.n_samples == 5000
    assert c.optimizer == "adam" and c.lr == 1e-4
    assert c.mask_ratio == 0.5 and tuple(c.n_patches) == (15, 30)
    assert c.nc_weight == 1.0 and c.recon_weight == 10.0 and c.huber_delta == 1.0
    assert c.embed_dim == 128 and c.heads == 4 and c.windows[0] == 19
    assert tuple(c.stem_channels) == (24, 48, 96, 96) and c.stem_kernel == 9


def test_ladder_rungs_share_input_and_optimiser_and_add_one_thing_each():
    shared = ("leads", "fs", "n_samples", "optimizer", "lr", "weight_decay", "batch_size",
              "grad_clip", "proj_hidden_dim", "proj_dim", "pred_hidden_dim", "tau_base")
    for preset in ("paper", "smoke", "cpu"):
        configs = [dataclasses.replace(cls.Config(), **cls.preset_overrides(preset)) for cls in LADDER]
        for field in shared:
            assert len({str(getattr(c, field)) for c in configs}) == 1, (preset, field)
    byol, masking, latent, nerula = (build(cls) for cls in LADDER)
    assert isinstance(byol, BYOL) and byol.augment is not None  # BYOL's augmentations
    assert isinstance(masking.encoder, ResNet1d) and not masking.latent_masking
    assert not hasattr(masking, "augment")  # the masked views replace the augmentations
    assert isinstance(latent.encoder, FinalLatent) and latent.latent_masking
    assert isinstance(latent.encoder.backbone, LocalLeadEncoder)
    assert not hasattr(latent, "decoder") and hasattr(nerula, "decoder")


def test_views_are_complementary_halves():
    method = build(Nerula)
    x = signal(method, batch=32)
    keep1, keep2 = method.views(x)
    assert keep1.shape == keep2.shape == (32, x.shape[-1])
    assert torch.equal(keep1, ~keep2)
    assert torch.equal(keep1.sum(dim=1), torch.full((32,), x.shape[-1] // 2))
    # A fresh mask every call (every training step).
    assert not torch.equal(method.views(x)[0], keep1)


@pytest.mark.parametrize("cls", [NerulaLadderMasking, NerulaLadderLatent, Nerula])
def test_encoder_sees_the_masked_views(cls):
    method = build(cls).train()
    x = signal(method)
    seen = []
    first = method.encoder.stem[0] if cls is NerulaLadderMasking else method.encoder.backbone.stem[0].entry
    first.register_forward_hook(lambda m, i, o: seen.append(i[0].detach()))
    torch.manual_seed(1)
    keep1, keep2 = method.views(x)
    torch.manual_seed(1)
    method.training_step({"signal": x})
    assert len(seen) == 2  # the online encoder, once per view (the target has its own copy)
    assert torch.equal(seen[0], x * keep1[:, None]) and torch.equal(seen[1], x * keep2[:, None])


def test_huber_reconstruction_known_values():
    prediction = torch.tensor([0.0, 0.5, 3.0, -2.0])
    target = torch.zeros(4)
    # 0.5 e^2 for |e| <= 1, |e| - 0.5 beyond: 0, 0.125, 2.5, 1.5.
    assert huber_reconstruction(prediction, target).item() == pytest.approx((0.125 + 2.5 + 1.5) / 4)
    assert huber_reconstruction(prediction, target, delta=2.0).item() == pytest.approx(
        (0.125 + 2 * (3 - 1) + 2.0) / 4)
    big = torch.tensor([100.0])  # linear, not quadratic, in a large error
    assert huber_reconstruction(big, torch.zeros(1)).item() == pytest.approx(99.5)


def test_nerula_loss_is_one_non_contrastive_plus_ten_huber_reconstruction():
    method = build(Nerula).train()
    x = signal(method)
    torch.manual_seed(2)
    keeps = method.views(x)
    method.views = lambda _: keeps  # the same masks for the step and the independent recomputation
    torch.manual_seed(3)
    out = method.training_step({"signal": x})
    assert out["loss"].item() == pytest.approx(
        out["non_contrastive"].item() + 10.0 * out["reconstruction"].item(), rel=1e-5)
    # Recompute both terms by hand from the method's pieces.
    (h1, r1), (h2, r2) = (method.reconstruct(x, k) for k in keeps)
    assert r1.shape == x.shape
    recon = 0.5 * (F.huber_loss(r1, x, delta=1.0) + F.huber_loss(r2, x, delta=1.0))
    assert out["reconstruction"].item() == pytest.approx(recon.item(), rel=1e-5)
    with torch.no_grad():
        z1, z2 = (method.target_projector(method.target_encoder(x, k)) for k in keeps)
    p1, p2 = (method.predictor(method.projector(h)) for h in (h1, h2))
    nc = 0.5 * (negative_cosine(p1, z2) + negative_cosine(p2, z1))
    assert out["non_contrastive"].item() == pytest.approx(nc.item(), rel=1e-5)
    assert -1.0 <= nc.item() <= 1.0


def test_loss_weights_are_used():
    x = None
    losses = {}
    for weights in [(1.0, 10.0), (1.0, 0.0), (0.0, 1.0)]:
        method = build(Nerula, nc_weight=weights[0], recon_weight=weights[1]).train()
        x = signal(method) if x is None else x
        torch.manual_seed(4)
        losses[weights] = method.training_step({"signal": x})
    nc, recon = losses[(1.0, 10.0)]["non_contrastive"], losses[(1.0, 10.0)]["reconstruction"]
    assert losses[(1.0, 0.0)]["loss"].item() == pytest.approx(nc.item(), rel=1e-5)
    assert losses[(0.0, 1.0)]["loss"].item() == pytest.approx(recon.item(), rel=1e-5)


def test_reconstruction_trains_the_decoder_and_encoder_but_never_the_target():
    method = build(Nerula).train()
    method.training_step({"signal": signal(method)})["loss"].backward()
    assert all(p.grad is not None for p in method.decoder.parameters())
    assert all(p.grad is None for p in method.target_encoder.parameters())
    trainable = {id(p) for p in method.trainable_parameters()}
    assert all(id(p) in trainable for p in method.decoder.parameters())
    assert not any(id(p) in trainable for p in method.target_encoder.parameters())


def test_ema_target_moves_after_a_step():
    method = build(NerulaLadderLatent).train()
    before = [p.detach().clone() for p in method.target_encoder.parameters()]
    optimizer = method.configure_optimizer()
    method.training_step({"signal": signal(method)})["loss"].backward()
    optimizer.step()
    method.on_train_step_end(0, 100)
    after = list(method.target_encoder.parameters())
    assert any(not torch.equal(b, a) for b, a in zip(before, after))
    online = torch.cat([p.detach().flatten() for p in method.encoder.parameters()])
    new = torch.cat([p.detach().flatten() for p in after])
    old = torch.cat([b.flatten() for b in before])
    tau = method.config.tau_base
    assert torch.allclose(new, tau * old + (1 - tau) * online, atol=1e-6)


def test_embed_sees_the_whole_signal():
    method = build(Nerula).eval()
    x = signal(method)
    full = torch.ones(x.shape[0], x.shape[-1], dtype=torch.bool)
    assert torch.equal(method.embed(x), method.encoder(x, full))
    keep, _ = method.views(x)
    assert not torch.allclose(method.embed(x), method.encoder(x, keep), rtol=1e-2, atol=0.0)


def _mask_lengths(method, x: torch.Tensor, monkeypatch) -> set[int]:
    """Every length the encoder resizes the keep mask to in one forward pass."""
    import ecgbench.methods.nerula
    import ecgbench.models.encoders.local_lead

    lengths: set[int] = set()

    def recording(mask, length):
        lengths.add(int(length))
        return resize_mask(mask, length)

    for module in (ecgbench.models.encoders.local_lead, ecgbench.methods.nerula):
        monkeypatch.setattr(module, "resize_mask", recording)
    with torch.no_grad():
        method.encoder(x, torch.ones(x.shape[0], x.shape[-1], dtype=torch.bool))
    monkeypatch.undo()
    return lengths


def _empty_views(hidden: torch.Tensor, lengths: set[int]) -> int:
    """Views (of the pair ~hidden, hidden) with no visible position at some length."""
    empty = 0
    for length in lengths:
        first = resize_mask(~hidden, length)  # the second view's mask is ~first, exactly
        empty += int((~first.any(dim=1)).sum() + first.all(dim=1).sum())
    return empty


@pytest.mark.parametrize("preset", [pytest.param("paper", marks=pytest.mark.slow), "smoke", "cpu"])
def test_no_view_is_ever_entirely_hidden_at_any_layer(preset, monkeypatch):
    """Every length the encoder masks at keeps a visible position for each of the two views:
    over 2,000 sampled masks at every layer, and at the paper preset over 20,000 at the
    transformer layers and the final latent (before: the last layer's 5 positions left one
    view nothing in 4.8 % of samples)."""
    config = dataclasses.replace(Nerula.Config(), **Nerula.preset_overrides(preset))
    torch.manual_seed(0)
    method = Nerula(config).eval()
    lengths = _mask_lengths(method, torch.randn(1, 1, config.n_samples), monkeypatch)
    assert config.final_len == 128 and 128 in lengths
    g = torch.Generator().manual_seed(0)

    def masks(n: int) -> torch.Tensor:
        return complementary_patch_mask(n, config.n_samples, config.mask_ratio,
                                        tuple(config.n_patches), generator=g)

    hidden = masks(2_000)
    assert torch.equal(resize_mask(hidden, 5), ~resize_mask(~hidden, 5))
    assert _empty_views(hidden, lengths) == 0
    if preset == "paper":
        latent = {n for n in lengths if n <= config.latent_len}  # transformer layers, final latent
        assert {5, 9, 128, 1152} <= latent  # the last of the eight halving layers has 5
        assert sum(_empty_views(masks(2_000), latent) for _ in range(9)) + _empty_views(hidden, latent) == 0


def test_final_latent_is_128_positions_non_zero_at_complementary_places():
    method = build(Nerula).eval()
    x = signal(method, batch=4)
    keep1, keep2 = method.views(x)
    with torch.no_grad():
        (h1, k1), (h2, k2) = (method.encoder.sequence(x, k) for k in (keep1, keep2))
    assert h1.shape == (4, method.config.embed_dim, 128) and k1.shape == (4, 128)
    assert torch.equal(k1, ~k2) and k1.any(1).all() and k2.any(1).all()
    assert (h1[:, :, ~k1[0]][0] == 0).all() and (h2[:, :, ~k2[0]][0] == 0).all()
    assert (h1.abs().sum(1) > 0).any(1).all() and (h2.abs().sum(1) > 0).any(1).all()
    with pytest.raises(ValueError, match="final_len"):
        build(Nerula, final_len=1)
