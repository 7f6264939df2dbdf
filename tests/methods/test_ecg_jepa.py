"""ECG-JEPA (Kim 2024), its multi-block variant and the hybrid representation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from ecgbench.data.clinical import clinical_features
from ecgbench.methods.ecg_jepa import JEPA_LEADS, EcgJepa, EcgJepaHybrid, EcgJepaMultiBlock
from ecgbench.models.encoders import count_parameters

pytestmark = pytest.mark.usefixtures("one_torch_thread")

VIT_B = 86e6


def smoke(cls, **overrides):
    config = dataclasses.replace(cls.Config(), **{**cls.preset_overrides("smoke"), **overrides})
    torch.manual_seed(0)
    return cls(config)


def vit_blocks(width: int, depth: int, mlp_ratio: int = 4) -> int:
    """Parameters of ``depth`` pre-norm ViT blocks: qkv + out projection, MLP, two LayerNorms."""
    hidden = width * mlp_ratio
    return depth * (3 * width * width + 3 * width + width * width + width
                    + 2 * width * hidden + hidden + width + 4 * width)


def test_paper_preset_sizes_and_parameter_counts():
    c = EcgJepa.Config()
    assert (c.leads, c.fs, c.n_samples, c.patch_size) == (JEPA_LEADS, 250, 2500, 50)
    assert (c.embed_dim, c.depth, c.heads) == (768, 12, 16)
    assert (c.predictor_dim, c.predictor_depth, c.predictor_heads) == (384, 6, 12)
    assert tuple(c.mask_ratio) == (0.6, 0.7) and EcgJepaMultiBlock.Config().masking == "multi-block"
    assert tuple(EcgJepaMultiBlock.Config().block_ratio) == (0.175, 0.225)
    with torch.device("meta"):
        method = EcgJepa(c)
    n_encoder = count_parameters(method.encoder)
    assert abs(n_encoder - VIT_B) / VIT_B < 0.02, f"{n_encoder:,} vs ViT-B"
    # patch projection 50 -> 768, the blocks, the final norm; positions are fixed (no parameters)
    assert n_encoder == 50 * 768 + 768 + vit_blocks(768, 12) + 2 * 768
    # predictor: 768 -> 384, mask token, 6 blocks of width 384, final norm, 384 -> 768
    expected = 768 * 384 + 384 + 384 + vit_blocks(384, 6) + 2 * 384 + 384 * 768 + 768
    assert count_parameters(method.predictor) == expected
    assert 11.0e6 < expected < 11.5e6
    assert count_parameters(method.target_encoder) == n_encoder


def test_target_encoder_is_a_linear_momentum_ema_without_gradients():
    method = smoke(EcgJepa).train()
    target = list(method.target_encoder.parameters())
    assert all(not p.requires_grad for p in target)
    assert not {id(p) for p in target} & {id(p) for p in method.trainable_parameters()}
    before = [p.detach().clone() for p in target]
    optimizer = method.configure_optimizer()
    method.training_step({"signal": torch.randn(4, 8, 2500)})["loss"].backward()
    assert all(p.grad is None for p in target)
    optimizer.step()
    method.on_train_step_end(25, 100)
    tau = 0.996 + 0.25 * (1.0 - 0.996)
    assert method.tau == pytest.approx(tau)
    for old, online, new in zip(before, method.encoder.parameters(), target):
        assert torch.allclose(new, tau * old + (1 - tau) * online.detach(), atol=1e-6)


@pytest.mark.parametrize("cls, low, high", [(EcgJepa, 0.6, 0.7), (EcgJepaMultiBlock, 0.175, 0.9)])
def test_masks_hide_time_patches_within_the_papers_ranges(cls, low, high):
    method = smoke(cls)
    torch.manual_seed(0)
    ratios = [float(method.sample_mask(torch.device("cpu")).float().mean()) for _ in range(50)]
    assert all(low - 0.011 <= r <= high + 0.011 for r in ratios)
    out = method.train().training_step({"signal": torch.randn(2, 8, 2500)})
    assert low - 0.011 <= out["mask_ratio"].item() <= high + 0.011


def test_predictor_predicts_only_the_masked_patches_of_every_lead():
    method = smoke(EcgJepa)
    context = torch.randn(3, 8, 20, method.config.embed_dim)
    visible, masked = torch.arange(20), torch.arange(20, 50)
    assert method.predictor(context, visible, masked).shape == (3, 8, 30, method.config.embed_dim)


# ----- Hybrid: a dual-input ECG-JEPA ---------------------------------------------------------------
def _simulated_window(heart_rate: int = 70) -> np.ndarray:
    import neurokit2 as nk
    lead_ii = nk.ecg_simulate(duration=10, sampling_rate=250, heart_rate=heart_rate,
                              random_state=0)
    window = np.zeros((8, 2500))
    window[1] = lead_ii
    window[0] = 0.5 * lead_ii  # lead I
    return window


def _base_and_hybrid():
    base = smoke(EcgJepa)
    with torch.no_grad():
        for p in base.parameters():
            p.add_(0.05)  # distinct from any fresh initialisation
    hybrid = smoke(EcgJepaHybrid)
    hybrid.init_from_base(base)
    return base, hybrid


def test_hybrid_starts_from_ecg_jepa_and_step_0_is_exactly_ecg_jepa():
    assert EcgJepaHybrid.base_method == "ecg-jepa" and EcgJepaHybrid.derived_input == "clinical"
    base, hybrid = _base_and_hybrid()
    for mine, theirs in ((hybrid.encoder.vit, base.encoder), (hybrid.target_encoder.vit, base.target_encoder),
                         (hybrid.predictor, base.predictor)):
        assert all(torch.equal(a, b) for a, b in zip(mine.state_dict().values(), theirs.state_dict().values()))
    x = torch.randn(3, 8, 2500)
    clinical = torch.from_numpy(clinical_features([np.zeros((8, 2500))] * 3, 250, JEPA_LEADS))
    torch.manual_seed(5)
    ours = hybrid.train().training_step({"signal": x, "clinical": clinical})["loss"]
    torch.manual_seed(5)
    theirs = base.train().training_step({"signal": x})["loss"]
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-6)  # zero-initialised fusion
    other = smoke(EcgJepa, embed_dim=16, heads=2)
    with pytest.raises(ValueError, match="does not fit"):
        smoke(EcgJepaHybrid).init_from_base(other)


def test_hybrid_pretraining_consumes_the_clinical_parameters():
    """Both inputs reach the JEPA loss: the clinical MLP gets gradients, and once it is
    non-zero the loss and the embedding change with the clinical input alone."""
    _, hybrid = _base_and_hybrid()
    x = torch.randn(4, 8, 2500)
    clinical = torch.tensor([[70, 160, 95, 400, 410, 45, 0]] * 4, dtype=torch.float32)
    torch.manual_seed(1)
    loss = hybrid.train().training_step({"signal": x, "clinical": clinical})["loss"]
    loss.backward()
    last = hybrid.encoder.clinical_embed[-1]
    assert last.weight.grad is not None and last.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in hybrid.target_encoder.parameters())
    with torch.no_grad():
        torch.nn.init.normal_(last.weight, std=0.5)
    fast = clinical.clone()
    fast[:, 0] = 150.0  # another heart rate, same signal
    losses = []
    for c in (clinical, fast):
        torch.manual_seed(1)
        losses.append(hybrid.training_step({"signal": x, "clinical": c})["loss"].item())
    assert losses[0] != pytest.approx(losses[1], rel=1e-6)
    hybrid.eval()
    a, b = hybrid.embed(x, clinical), hybrid.embed(x, fast)
    d = hybrid.config.embed_dim
    assert a.shape == (4, d + 7) and hybrid.embedding_dim == d + 7
    assert not torch.allclose(a[:, :d], b[:, :d])  # the encoder itself sees the parameters
    assert a[0, d] == pytest.approx(-0.25) and b[0, d] == pytest.approx(3.75)  # (hr - 75) / 20
    with pytest.raises(KeyError, match="clinical"):
        hybrid.training_step({"signal": x})


def test_hybrid_embed_without_the_cached_input_measures_the_windows():
    _, hybrid = _base_and_hybrid()
    x = torch.tensor(_simulated_window(70)[None], dtype=torch.float32)
    measured = torch.from_numpy(clinical_features(list(x.numpy()), 250, JEPA_LEADS))
    assert torch.allclose(hybrid.eval().embed(x), hybrid.embed(x, measured))


def test_hybrid_training_and_embedding_windows_get_their_records_clinical_row():
    """The runner's plumbing for a derived input: training batches carry table[record_index]
    (WithDerivedInput over the pretraining windows) and embed_windows hands every window its
    record's row, so a record's windows all see that record's parameters."""
    from ecgbench.evaluation.embedding import embed_windows
    from ecgbench.models.method import WithDerivedInput
    from ecgbench.models.train import WindowDataset

    table = np.stack([np.arange(7) + 10.0 * r for r in range(3)]).astype(np.float32)  # 3 records
    windows = np.random.default_rng(0).standard_normal((3, 2, 8, 2500)).astype(np.float32)
    dataset = WithDerivedInput(WindowDataset(windows.reshape(6, 8, 2500), np.repeat([5, 6, 7], 2),
                                             np.repeat([0, 1, 2], 2)), "clinical", table)
    batch = dataset.__getitems__([5, 0, 3])
    assert torch.equal(batch["clinical"], torch.from_numpy(table[[2, 0, 1]]))
    assert torch.equal(dataset[4]["clinical"], torch.from_numpy(table[2])) and len(dataset) == 6
    _, hybrid = _base_and_hybrid()
    with torch.no_grad():
        torch.nn.init.normal_(hybrid.encoder.clinical_embed[-1].weight, std=0.5)
    valid = np.array([[True, True], [True, False], [True, True]])
    out = embed_windows(hybrid, windows, torch.device("cpu"), batch_size=4, valid=valid,
                        derived={"clinical": table})
    x = torch.from_numpy(windows)
    expected = [torch.stack([hybrid.embed(x[r, w][None], torch.from_numpy(table[r:r + 1]))[0]
                             for w in range(2) if valid[r, w]]).mean(0) for r in range(3)]
    assert np.allclose(out, torch.stack(expected).numpy(), atol=1e-5)
