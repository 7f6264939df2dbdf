"""NERULA's comparisons as NERULA ran them (methods/nerula_comparisons.py, supervised-resnet50):
lead II at NERULA's input and optimiser, CLOCS-style segment pairs under BYOL's loss on a
ResNet, and a real bottleneck 1-D ResNet-50, at the paper preset's shapes."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from ecgbench.core.registry import METHODS
from ecgbench.methods.nerula import NerulaConfig
from ecgbench.models.encoders import BasicBlock1d, Bottleneck1d, ResNet1d

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def build(name: str, preset: str = "paper"):
    cls = METHODS.get(name)
    torch.manual_seed(0)
    return cls(dataclasses.replace(cls.Config(), **cls.preset_overrides(preset)))


@pytest.mark.parametrize("name", ["nerula-ladder-byol", "simclr-lead2", "nerula-resnet-clocs", "clocs-cmsc", "nerula"])
def test_every_competitor_reads_lead_ii_at_nerulas_input_and_optimiser(name):
    config = build(name, "paper").config
    assert tuple(config.leads) == ("II",) and config.optimizer == "adam" and config.lr == NerulaConfig.lr == 1e-4
    assert (config.fs, config.n_samples) == (NerulaConfig.fs, NerulaConfig.n_samples) == (500, 5000)


def test_simclr_lead2_is_simclr_without_lead_masking():
    method = build("simclr-lead2", "smoke")
    assert method.config.mask_p == 0.0 and method.config.temperature == 0.5
    x = torch.randn(2, 1, method.config.n_samples)
    assert method.embed(x).shape == (2, method.encoder.embedding_dim)


def test_resnet_clocs_pairs_are_the_two_adjacent_halves_under_byols_loss():
    method = build("nerula-resnet-clocs", "smoke").eval()
    x = torch.randn(4, 1, method.config.n_samples)
    half = x.shape[-1] // 2
    first, second = method.encoder.views(x)
    backbone = method.encoder.backbone
    assert torch.allclose(first, backbone(x[..., :half]), atol=1e-5)
    assert torch.allclose(second, backbone(x[..., half:]), atol=1e-5)
    assert torch.allclose(method.embed(x), (first + second) / 2, atol=1e-5)  # one vector per window
    method.train()
    out = method.training_step({"signal": x, "patient_id": torch.arange(4), "record_index": torch.arange(4)})
    out["loss"].backward()
    loss = float(out["loss"].detach())
    assert 0 <= loss <= 8  # two terms of 2 - 2 cos
    assert all(p.grad is None for p in method.target_encoder.parameters())  # the target is an EMA only
    assert any(p.grad is not None for p in method.encoder.parameters())


def test_resnet_clocs_refuses_an_odd_window():
    cls = METHODS.get("nerula-resnet-clocs")
    with pytest.raises(ValueError, match="does not split into two segments"):
        cls(dataclasses.replace(cls.Config(), **{**cls.preset_overrides("smoke"), "n_samples": 501}))


def test_supervised_resnet50_is_a_bottleneck_resnet_50():
    """Stem conv + 16 bottleneck blocks of three convs (3, 4, 6, 3) + the label head: 50 layers."""
    method = build("supervised-resnet50", "paper")
    encoder = method.encoder
    assert isinstance(encoder, ResNet1d) and encoder.embedding_dim == 2048
    blocks = [m for m in encoder.modules() if isinstance(m, Bottleneck1d)]
    assert [len(stage) for stage in encoder.stages] == [3, 4, 6, 3] and len(blocks) == 16
    assert not any(isinstance(m, BasicBlock1d) for m in encoder.modules())
    for block, (width, stride) in zip(blocks, [(64, 1)] * 3 + [(128, 2)] + [(128, 1)] * 3 + [(256, 2)]
                                      + [(256, 1)] * 5 + [(512, 2)] + [(512, 1)] * 2):
        convs = [m for m in block.branch if isinstance(m, nn.Conv1d)]
        assert [c.kernel_size[0] for c in convs] == [1, 7, 1] and convs[1].stride[0] == stride
        assert (convs[0].out_channels, convs[2].out_channels) == (width, 4 * width)
    shortcuts = {id(m) for b in blocks for m in b.shortcut.modules()}
    main_convs = [m for m in encoder.modules() if isinstance(m, nn.Conv1d) and id(m) not in shortcuts]
    method.setup_task("multiclass", 3)
    assert len(main_convs) + 1 == 50  # + the linear head
    x = torch.randn(2, 1, method.config.n_samples)
    assert method.training_step({"signal": x, "label": torch.tensor([0, 2])})["loss"].isfinite()
    assert 20e6 < sum(p.numel() for p in encoder.parameters()) < 25e6  # 2-D ResNet-50: 23.5M without fc
