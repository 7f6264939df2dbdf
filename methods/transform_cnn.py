"""Signal-transformation recognition (Sarkar & Etemad), and its residual-connection ablation.

P. Sarkar and A. Etemad, "Self-supervised ECG Representation Learning for Emotion Recognition",
IEEE Transactions on Affective Computing 13(3):1541-1554, 2022 (early access 2020),
doi:10.1109/TAFFC.2020.3014842, https://arxiv.org/abs/2002.03898.
Reference code (TensorFlow 1.14): https://github.com/pritamqu/SSL-ECG, ``implementation/``.

Method. Every 10 s single-lead window (256 Hz, 2560 samples) enters the network seven times:
as it is and after each of six transformations (Gaussian noise at 15 dB SNR, scaling by 0.9,
negation, horizontal flip, permutation of 20 segments, time warping of 9 segments by 1.05).
A shared CNN (:class:`ecgbench.models.encoders.TransformCNN`) encodes all 7B signals; one dense head
per task (two 128-unit layers with leaky ReLU and dropout 0.6, then one logit) answers "is this
signal <task>?", so head k is a binary classifier of its own transformation against the other
six signal kinds. The loss is the weighted sum of the seven binary cross entropies plus an L2
penalty of 1e-4 on every conv and dense kernel; Adam with learning rate 1e-3, 128 windows per
batch (896 signals). The encoder's 128-d global-max-pooled features are the representation.

The seven heads (the original signal is a task of its own), the loss weights (0.195 for
original, noise, scaling, permutation and time warping; 0.0125 for the easy negation and flip)
and the L2 penalty ``L2 * sum(w**2) / 2`` over kernels only (``tf.nn.l2_loss``, biases
excluded) follow the released code (``main.py``, ``utils.py``, ``model.py``).

Departures:
- Leaky ReLU (slope 0.2) in the conv blocks, as the released code (``tf.nn.leaky_relu``): seed 004 describes ReLU; seed 000 names no activation.
- Max pooling (size 8, stride 2) after conv blocks 1 and 2 only, block 3 going straight to global max pooling, as the released code; seed 004 puts a size-8 max pool in every block and gives no stride.
- L2 (1e-4, ``sum(w**2)/2``) on conv kernels as well as dense kernels, as the released code; seed 004 names it for the dense layers only.
- Dense-head width 128 and leaky ReLU come from the released code; seed 004 gives neither.
- Pretext is transformation recognition (seed 004 §1.1.1, the paper); seed 004 §1.2's contrastive pretext and batch-norm CNN describe another implementation and are not followed.
- Lead II by default; seed 004 (DREAMER, 256 Hz, 2560-sample windows) names no lead.
- No learning-rate decay: the code decays by 0.9 every 10k steps (staircase), seed 004 tuned none or cosine with warm restarts; the harness owns the schedule.
- Adam lr 1e-3 and 128 windows per batch (the released code); seed 004's tuned runs used lr 2.0e-3-2.4e-3, 32 or 64 windows and 5-8 warm-up epochs (see ``search_space``).
- Steps, not epochs: the paper trains 100 epochs over SWELL+AMIGOS+DREAMER+WESAD; ``max_steps`` stands in.
- Scaling factor 0.9 (the paper's); the released ``main.py`` sets ``scale_param = 1.1``.
- Batched transformations on tensors instead of per-window numpy/cv2; same sample centres, same parameters.
- Time warping resamples back to the window length if the warped signal came out shorter (the code would fail).
- No trailing-zero trimming of windows (the harness gives full windows).
- No gradient clipping (none in the released code); the harness default is 3.0.
- Residual variants (transform-cnn-res1/-res12/-res123) are seed 000's proposal, not in the paper; the shortcut (1x1 conv, as every block changes channels) is added after the block's second activation, before pooling, where He et al. add before the last activation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ecgbench.models import encoders
from ecgbench.models.augment import sarkar_etemad_transforms
from ecgbench.models.losses import multitask_bce
from ecgbench.models.method import Method, MethodConfig

TASKS = ("original", "noise", "scale", "negate", "flip", "permute", "time_warp")


def dense_head(d_in: int, hidden: int, layers: int, dropout: float, slope: float) -> nn.Sequential:
    """``layers`` x (Linear -> LeakyReLU -> Dropout), then one logit."""
    modules: list[nn.Module] = []
    for _ in range(layers):
        modules += [nn.Linear(d_in, hidden), nn.LeakyReLU(slope), nn.Dropout(dropout)]
        d_in = hidden
    return nn.Sequential(*modules, nn.Linear(d_in, 1))


class TransformCNN(Method):
    """Sarkar & Etemad: recognise which of 6 signal transformations (or none) was applied."""

    name = "transform-cnn"
    version = 1
    paper = ("Sarkar & Etemad, Self-supervised ECG Representation Learning for Emotion "
             "Recognition, IEEE TAC 2020, arXiv:2002.03898")

    @dataclass
    class Config(MethodConfig):
        leads: tuple[str, ...] = ("II",)
        fs: int = 256
        n_samples: int = 2560
        optimizer: str = "adam"
        lr: float = 1e-3
        batch_size: int = 128  # windows; the encoder sees 7x as many signals
        grad_clip: float = 0.0
        # Encoder.
        channels: tuple[int, ...] = (32, 64, 128)
        kernels: tuple[int, ...] = (32, 16, 8)
        residual_blocks: tuple[int, ...] = ()
        negative_slope: float = 0.2  # tf.nn.leaky_relu's default
        # Task heads and loss.
        head_hidden: int = 128
        head_layers: int = 2
        dropout: float = 0.6
        l2: float = 1e-4
        loss_weights: tuple[float, ...] = (0.195, 0.195, 0.195, 0.0125, 0.0125, 0.195, 0.195)
        # Transformations.
        noise_snr_db: float = 15.0
        scale_factor: float = 0.9
        permute_segments: int = 20
        warp_segments: int = 9
        warp_stretch: float = 1.05

        def __post_init__(self) -> None:
            # ``--set residual_blocks=1,2`` arrives as strings (the default is empty).
            self.residual_blocks = tuple(int(b) for b in self.residual_blocks)

    # Kernels shrink with the sampling rate so that receptive fields keep their length in
    # seconds. cpu: 32 windows per step are 224 signals, about 0.6 s per step on one core.
    presets = {
        "smoke": {"fs": 64, "n_samples": 640, "channels": (4, 8, 16), "kernels": (8, 4, 2),
                  "head_hidden": 16},
        "cpu": {"fs": 128, "n_samples": 1280, "channels": (8, 16, 32), "kernels": (16, 8, 4),
                "head_hidden": 64, "batch_size": 32},
    }

    @classmethod
    def search_space(cls, config: Config) -> dict[str, tuple]:
        """Seed 004's Ray Tune space on this Config: Adam lr around 2e-3, 32 or 64 windows per
        batch, warm-up over 5-8 of 100 epochs (as 5-8 % of ``max_steps``). Its scheduler (none or
        cosine with warm restarts), cycles and decay 0.95-0.97 have no field here: the trainer
        has no decay schedule (see Departures)."""
        return {"lr": ("loguniform", 1e-3, 4e-3), "batch_size": ("choice", (32, 64)),
                "warmup_steps": ("int", round(0.05 * config.max_steps), round(0.08 * config.max_steps))}

    def __init__(self, config: Config):
        super().__init__(config)
        c = config
        if len(c.loss_weights) != len(TASKS):
            raise ValueError(f"{self.name}: {len(c.loss_weights)} loss weights for {len(TASKS)} tasks")
        self.encoder = encoders.TransformCNN(
            in_leads=len(c.leads), channels=c.channels, kernels=c.kernels,
            residual_blocks=c.residual_blocks, negative_slope=c.negative_slope,
        )
        self.heads = nn.ModuleList(
            dense_head(self.encoder.embedding_dim, c.head_hidden, c.head_layers, c.dropout,
                       c.negative_slope)
            for _ in TASKS
        )
        self.transforms = sarkar_etemad_transforms(
            snr_db=c.noise_snr_db, scale_factor=c.scale_factor,
            permute_segments_n=c.permute_segments, warp_segments=c.warp_segments,
            warp_stretch=c.warp_stretch,
        )

    def transformed_batch(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(B, leads, T) -> signals (7B, leads, T) and one-hot task targets (7B, 7)."""
        views = [x] + [self.transforms[task](x) for task in TASKS[1:]]
        signals = torch.cat(views, dim=0)
        task = torch.arange(len(TASKS), device=x.device).repeat_interleave(x.shape[0])
        return signals, nn.functional.one_hot(task, len(TASKS)).float()

    def l2_penalty(self) -> Tensor:
        """sum(w**2) / 2 over every conv and dense kernel (tf.nn.l2_loss; biases excluded)."""
        kernels = [m.weight for m in self.modules() if isinstance(m, (nn.Conv1d, nn.Linear))]
        return sum(w.pow(2).sum() for w in kernels) / 2

    def training_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        x = batch["signal"]  # (B, leads, T)
        signals, targets = self.transformed_batch(x)  # (7B, leads, T), (7B, 7)
        features = self.encoder(signals)  # (7B, D)
        logits = torch.cat([head(features) for head in self.heads], dim=1)  # (7B, 7)
        task_loss, _ = multitask_bce(logits, targets, self.config.loss_weights)
        l2 = self.l2_penalty()
        out = {"loss": task_loss + self.config.l2 * l2, "task_loss": task_loss.detach(),
               "l2": l2.detach()}
        accuracy = ((logits > 0) == targets.bool()).float().mean(dim=0).detach()  # (7,)
        out.update({f"acc_{task}": accuracy[k] for k, task in enumerate(TASKS)})
        return out


class TransformCNNRes1(TransformCNN):
    """Ablation: transform-cnn with a residual connection around conv block 1."""

    name = "transform-cnn-res1"

    @dataclass
    class Config(TransformCNN.Config):
        residual_blocks: tuple[int, ...] = (1,)


class TransformCNNRes12(TransformCNN):
    """Ablation: transform-cnn with residual connections around conv blocks 1 and 2."""

    name = "transform-cnn-res12"

    @dataclass
    class Config(TransformCNN.Config):
        residual_blocks: tuple[int, ...] = (1, 2)


class TransformCNNRes123(TransformCNN):
    """Ablation: transform-cnn with residual connections around all three conv blocks."""

    name = "transform-cnn-res123"

    @dataclass
    class Config(TransformCNN.Config):
        residual_blocks: tuple[int, ...] = (1, 2, 3)
