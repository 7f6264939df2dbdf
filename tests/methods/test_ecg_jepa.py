"""ECG-JEPA (Kim 2024), its multi-block variant and the hybrid representation."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from ecgbench.encoders import count_parameters
from ecgbench.methods.ecg_jepa import (
    CLINICAL_FIELDS,
    JEPA_LEADS,
    TYPICAL_VALUES,
    EcgJepa,
    EcgJepaHybrid,
    EcgJepaMultiBlock,
    clinical_features,
    clinical_parameters,
)

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


# ----- Hybrid: clinical parameters ---------------------------------------------------------------
def _simulated_window(heart_rate: int = 70) -> np.ndarray:
    import neurokit2 as nk
    lead_ii = nk.ecg_simulate(duration=10, sampling_rate=250, heart_rate=heart_rate,
                              random_state=0)
    window = np.zeros((8, 2500))
    window[1] = lead_ii
    window[0] = 0.5 * lead_ii  # lead I: aVF = II - I / 2 = 0.75 II
    return window


def test_clinical_parameters_of_a_simulated_ecg():
    values = dict(zip(CLINICAL_FIELDS, clinical_parameters(_simulated_window(70), 250, JEPA_LEADS)))
    assert values["heart_rate_bpm"] == pytest.approx(70, abs=3)
    assert 100 <= values["pr_ms"] <= 250 and 60 <= values["qrs_ms"] <= 200
    assert 300 <= values["qt_ms"] <= 500
    rr = 60 / values["heart_rate_bpm"]
    assert values["qtc_ms"] == pytest.approx(values["qt_ms"] / math.sqrt(rr))
    # net QRS in I is 0.5 n and in aVF 0.75 n: the axis is atan2(0.75, 0.5) for positive n
    assert values["qrs_axis_deg"] == pytest.approx(math.degrees(math.atan2(0.75, 0.5)), abs=0.01)


def test_failed_delineation_is_filled_and_counted_never_raised():
    windows = np.stack([np.zeros((8, 2500)), _simulated_window(70)])
    features = clinical_features(windows, 250, JEPA_LEADS)
    assert features.shape == (2, len(CLINICAL_FIELDS) + 1) and np.isfinite(features).all()
    assert features[0, :-1].tolist() == list(TYPICAL_VALUES) and features[0, -1] == 6
    assert features[1, -1] == 0
    no_lead_ii = clinical_parameters(np.zeros((2, 2500)), 250, ("I", "V1"))
    assert np.isnan(no_lead_ii).all()


def test_hybrid_representation_concatenates_encoder_and_clinical_features():
    method = smoke(EcgJepaHybrid).eval()
    x = torch.tensor(_simulated_window(70)[None], dtype=torch.float32)
    z = method.embed(x)
    d = method.config.embed_dim
    assert method.embedding_dim == d + 7 and z.shape == (1, d + 7)
    assert torch.allclose(z[:, :d], method.encoder.backbone(x))
    assert z[0, d] == pytest.approx(70, abs=3)  # heart rate
    # the pretraining is ECG-JEPA's, on the backbone alone
    assert method.context_encoder is method.encoder.backbone
    out = method.train().training_step({"signal": torch.randn(2, 8, 2500)})
    assert torch.isfinite(out["loss"])
