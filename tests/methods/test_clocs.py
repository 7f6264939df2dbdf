"""CLOCS specifics: views (segments x leads), the paper's CNN, patient positives, embed()."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from ecgbench.core.registry import METHODS
from ecgbench.models.encoders import ClocsCNN, count_parameters

pytestmark = pytest.mark.usefixtures("one_torch_thread")

VARIANTS = ["clocs", "clocs-cmsc", "clocs-cmlc", "clocs-cmsmlc"]


def build(name: str, preset: str = "smoke"):
    cls = METHODS.get(name)
    torch.manual_seed(0)
    return cls(dataclasses.replace(cls.Config(), **cls.preset_overrides(preset)))


def test_paper_cnn_on_a_2500_sample_segment():
    cnn = ClocsCNN()
    assert cnn.flat_dim == 320  # 32 channels x 10 samples, the paper's linear input
    assert cnn(torch.randn(2, 1, 2500)).shape == (2, 256)
    convs = [m for m in cnn.modules() if isinstance(m, nn.Conv1d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (1, 4, (7,), (3,)), (4, 16, (7,), (3,)), (16, 32, (7,), (3,))]
    assert sum(isinstance(m, nn.BatchNorm1d) for m in cnn.modules()) == 3
    assert {m.p for m in cnn.modules() if isinstance(m, nn.Dropout)} == {0.1}
    # conv (k*c_in*c_out + c_out) + BN (2 c_out) per block, then 320 * 256 + 256.
    assert count_parameters(cnn) == 32 + 8 + 464 + 32 + 3616 + 64 + 82_176
    with pytest.raises(ValueError, match="too short"):
        ClocsCNN(segment_samples=300)


def test_paper_defaults():
    cmsc, cmlc, cmsmlc = (METHODS.get(n).Config() for n in VARIANTS[1:])
    for c in (cmsc, cmlc, cmsmlc):
        assert (c.lr, c.batch_size, c.temperature, c.optimizer) == (1e-4, 256, 0.1, "adam")
        assert c.fs == 500 and c.n_samples // c.n_segments == 2500
    assert cmsc.leads == ("II",) and cmsc.n_segments == 2
    assert cmlc.leads == ("II", "V2", "aVL", "aVR") and cmlc.n_segments == 1
    assert cmsmlc.leads == cmlc.leads and cmsmlc.n_segments == 2
    assert METHODS.get("clocs").Config() == cmsc


@pytest.mark.parametrize("name, n_views", [("clocs-cmsc", 2), ("clocs-cmlc", 4), ("clocs-cmsmlc", 8)])
def test_views_are_adjacent_segments_and_leads(name, n_views):
    method = build(name)
    c = method.config
    x = torch.randn(3, len(c.leads), c.n_samples)
    parts = method.encoder.split(x)  # (V, B, 1, S)
    seg = c.n_samples // c.n_segments
    assert parts.shape == (n_views, 3, 1, seg)
    for s in range(c.n_segments):
        for lead in range(len(c.leads)):
            view = parts[s * len(c.leads) + lead, :, 0]
            assert torch.equal(view, x[:, lead, s * seg:(s + 1) * seg])


@pytest.mark.parametrize("name", VARIANTS)
def test_embed_averages_the_shared_cnn_over_views(name):
    method = build(name).eval()
    c = method.config
    x = torch.randn(3, len(c.leads), c.n_samples)
    with torch.no_grad():
        per_view = torch.stack([method.encoder.backbone(v) for v in method.encoder.split(x)])
    assert torch.allclose(method.embed(x), per_view.mean(dim=0), atol=1e-6)
    assert method.embedding_dim == c.embedding_dim


def _cosines_after_training(patient_id: torch.Tensor, steps: int = 20) -> tuple[float, float]:
    """Train clocs-cmsc (smoke) on one fixed batch; cosines of items (0, 1) and (0, 2)."""
    cls = METHODS.get("clocs-cmsc")
    torch.manual_seed(0)
    method = cls(dataclasses.replace(cls.Config(), **cls.preset_overrides("smoke"), lr=1e-3)).train()
    optimizer = method.configure_optimizer()
    x = torch.randn(8, 1, method.config.n_samples, generator=torch.Generator().manual_seed(0))
    for step in range(steps):
        torch.manual_seed(step)  # dropout
        loss = method.training_step({"signal": x, "patient_id": patient_id})["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    z = nn.functional.normalize(method.eval().embed(x), dim=-1)
    return (z[0] @ z[1]).item(), (z[0] @ z[2]).item()


def test_same_patient_items_are_pulled_together():
    # Items 0 and 1 are unrelated signals. Labelled as one patient, training makes their
    # embeddings agree (closer than item 0 to another patient's item 2); labelled as two
    # patients from the same initialisation, it does not.
    shared = _cosines_after_training(torch.tensor([0, 0, 1, 2, 3, 4, 5, 6]))
    distinct = _cosines_after_training(torch.arange(8))
    assert shared[0] > distinct[0] + 0.1
    assert shared[0] > shared[1]


def test_window_must_split_into_segments():
    cls = METHODS.get("clocs-cmsc")
    with pytest.raises(ValueError, match="multiple of n_segments"):
        cls(dataclasses.replace(cls.Config(), n_samples=5001))
    with pytest.raises(ValueError, match="two views"):
        cls(dataclasses.replace(cls.Config(), n_segments=1))
