"""Self-supervised losses: pure functions on tensors, tested alone (tests/models/test_losses.py)
against hand-computed values and against independent implementations (lightly,
pytorch-metric-learning)."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ecgbench.models.distributed import gather, gather_with_grad


def nt_xent(z1: Tensor, z2: Tensor, temperature: float = 0.5) -> Tensor:
    """SimCLR's normalized temperature-scaled cross entropy (Chen et al., ICML 2020, eq. 1).

    ``z1``, ``z2``: (N, D) projections of two views; row i of each is a positive pair. Every
    one of the 2N anchors has one positive and 2N - 2 negatives (all other views in the batch);
    the loss is the mean over the 2N anchors. Under torchrun the batch is the global one: the
    projections of every rank are gathered with their gradients (:mod:`ecgbench.models.distributed`).
    """
    z1, z2 = gather_with_grad(z1), gather_with_grad(z2)
    n = z1.shape[0]
    with _full_precision(z1):
        z = F.normalize(torch.cat([z1, z2], dim=0).float(), dim=1)  # (2N, D)
        logits = z @ z.T / temperature  # (2N, 2N) cosine similarities / tau
        self_mask = torch.eye(2 * n, dtype=torch.bool, device=z.device)
        logits = logits.masked_fill(self_mask, float("-inf"))  # not its own negative
        positive = (torch.arange(2 * n, device=z.device) + n) % (2 * n)  # made on the device: no copy
        return F.cross_entropy(logits, positive)


def _full_precision(t: Tensor) -> torch.autocast:
    """Losses compute in float32 even inside the trainer's bf16 autocast region: similarities
    divided by a small temperature lose too much in bf16."""
    return torch.autocast(t.device.type, enabled=False)


def negative_cosine(p: Tensor, z: Tensor) -> Tensor:
    """Mean negative cosine similarity between rows of ``p`` and ``z`` (SimSiam's D)."""
    with _full_precision(p):
        return -F.cosine_similarity(p.float(), z.float(), dim=-1).mean()


def byol_loss(p: Tensor, z: Tensor) -> Tensor:
    """BYOL's normalized MSE (Grill et al., NeurIPS 2020, eq. 2): ||p/|p| - z/|z| ||^2 = 2 - 2cos.

    ``p``: online predictions, ``z``: target projections (the caller computes them without
    gradient); mean over the batch. The method symmetrises it over the two views.
    """
    return 2.0 + 2.0 * negative_cosine(p, z)


def multitask_bce(logits: Tensor, targets: Tensor, weights: Sequence[float] | Tensor | None = None
                  ) -> tuple[Tensor, Tensor]:
    """Weighted sum of per-task binary cross entropies (one sigmoid head per task).

    ``logits``, ``targets``: (N, K). Returns ``(loss, per_task)`` where ``per_task`` is the (K,)
    mean BCE of each head and ``loss = sum_k weights[k] * per_task[k]`` (weights default to 1/K).
    """
    per_task = F.binary_cross_entropy_with_logits(
        logits, targets.to(logits.dtype), reduction="none"
    ).mean(dim=0)  # (K,)
    if weights is None:
        return per_task.mean(), per_task
    w = torch.as_tensor(weights, dtype=per_task.dtype, device=per_task.device)
    if w.shape != per_task.shape:
        raise ValueError(f"{w.numel()} loss weights for {per_task.numel()} tasks")
    return (w * per_task).sum(), per_task


def patient_contrastive(views: Tensor, patient_ids: Tensor, temperature: float = 0.1) -> Tensor:
    """CLOCS's patient-specific contrastive loss (Kiyasseh et al., ICML 2021, eqs. 1-3).

    ``views``: (V, B, D) embeddings of V views (segments and/or leads) of B instances;
    ``patient_ids``: (B,). For every ordered pair of distinct views (A, B) the similarities
    s_ik = cos(a_i, b_k) / temperature form a B x B matrix; p(i, k) is its row-wise softmax
    (the denominator runs over the other view's B items only, never over the anchor's own view),
    and the pair's loss is -log p(i, k) averaged over all (i, k) whose patients match: the
    paired item k = i and every other item of the same patient are positives. The loss is the
    mean over the V (V - 1) ordered pairs, i.e. both directions of every view pair.

    Relations (tests/models/test_losses.py): with all patients distinct this is the symmetric
    cross-view InfoNCE (CLIP's loss), equal to pytorch-metric-learning's ``NTXentLoss`` with
    ``ref_emb`` averaged over both directions, and not SimCLR's NT-Xent (which also contrasts
    within a view). With repeated patients it equals pml's ``SupConLoss`` with ``ref_emb``
    when every patient has the same number of items in the batch; otherwise SupCon averages
    per anchor first, while CLOCS's expectation runs over all positive pairs at once. pml's
    ``NTXentLoss`` differs there too: it drops the other positives from each denominator.
    The paper sums over view pairs; the mean keeps the scale independent of V.
    """
    views = gather_with_grad(views.transpose(0, 1)).transpose(0, 1)  # the global batch under torchrun
    patient_ids = gather(patient_ids)
    n_views, batch = views.shape[:2]
    if n_views < 2:
        raise ValueError(f"patient_contrastive needs at least 2 views, got {n_views}")
    if patient_ids.shape != (batch,):
        raise ValueError(f"patient_ids must be ({batch},), got {tuple(patient_ids.shape)}")
    with _full_precision(views):
        z = F.normalize(views.float(), dim=-1)  # (V, B, D)
        logits = torch.einsum("aid,bkd->abik", z, z) / temperature  # (V, V, B, B)
        log_p = logits.log_softmax(dim=-1)  # over the other view's items k
        positive = (patient_ids[:, None] == patient_ids[None, :]).to(log_p.dtype)  # (B, B)
        per_pair = -(log_p * positive).sum(dim=(-2, -1)) / positive.sum()  # (V, V)
        off_diagonal = ~torch.eye(n_views, dtype=torch.bool, device=views.device)
        return per_pair[off_diagonal].mean()


def masked_mse(prediction: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean squared error over the masked tokens only (MAE, He et al. 2022).

    ``prediction``, ``target``: (B, N, P) or (B, N); ``mask``: (B, N) bool, True = masked.
    The error is averaged over the P values of each token, then over the masked tokens.
    """
    with _full_precision(prediction):
        error = (prediction.float() - target.float()).pow(2)
        if error.ndim == 3:
            error = error.mean(dim=-1)  # (B, N)
        weight = mask.to(error.dtype)
        return (error * weight).sum() / weight.sum().clamp_min(1.0)


# ----- Metric learning: triplets whose positives share a diagnosis -----------------------------
def triplet_margin(anchor: Tensor, positive: Tensor, negative: Tensor, margin: float = 1.0,
                   squared: bool = False) -> Tensor:
    """Triplet margin loss (Schroff et al., FaceNet, CVPR 2015): mean over the given triplets of
    max(0, d(a, p) - d(a, n) + margin) with d the Euclidean distance (``squared`` = its
    square, FaceNet's form). Rows of ``anchor``, ``positive``, ``negative`` (T, D) are triplets;
    an empty set gives a zero loss that still has a gradient path."""
    with _full_precision(anchor):
        a, p, n = anchor.float(), positive.float(), negative.float()
        d_ap, d_an = (a - p).pow(2).sum(-1), (a - n).pow(2).sum(-1)
        if not squared:
            d_ap, d_an = d_ap.clamp_min(1e-12).sqrt(), d_an.clamp_min(1e-12).sqrt()
        if a.shape[0] == 0:
            return a.sum() * 0.0
        return F.relu(d_ap - d_an + margin).mean()


def diagnosis_pairs(labels: Tensor) -> tuple[Tensor, Tensor]:
    """Which pairs of a batch share a diagnosis: ``(positive, negative)``, both (B, B) bool.

    ``labels`` (B,) class ids: positives have the same class, negatives a different one.
    ``labels`` (B, C) multi-hot: positives have the identical label set (exact match),
    negatives have no label in common; pairs with a partial overlap are neither. The diagonal
    is never a positive.
    """
    if labels.ndim == 1:
        same = labels[:, None] == labels[None, :]
        positive, negative = same, ~same
    elif labels.ndim == 2:
        y = (labels > 0.5).to(torch.float32)
        positive = (y[:, None, :] == y[None, :, :]).all(dim=-1)
        negative = (y @ y.T) == 0
        negative &= ~positive  # two empty label sets are identical, not disjoint
    else:
        raise ValueError(f"labels must be (B,) or (B, C), got {tuple(labels.shape)}")
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return positive & ~eye, negative & ~eye


def sample_triplets(positive: Tensor, negative: Tensor,
                    generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """One random positive and one random negative for every anchor that has both in the
    batch (the seed report's batch-wise sampling). Returns index tensors ``(a, p, n)``, (T,)."""
    has_both = positive.any(dim=1) & negative.any(dim=1)
    anchors = torch.nonzero(has_both).flatten()
    noise_device = generator.device if generator is not None else positive.device
    def pick(candidates: Tensor) -> Tensor:  # a uniform random True column per row
        noise = torch.rand(candidates.shape, generator=generator, device=noise_device)
        return (noise.to(candidates.device) * candidates).argmax(dim=1)
    return anchors, pick(positive[anchors]), pick(negative[anchors])


# ----- Vector quantisation (VQ-VAE, van den Oord et al., NeurIPS 2017) -------------------------
def vector_quantize(z: Tensor, codebook: Tensor, commitment: float = 0.25
                    ) -> tuple[Tensor, Tensor, Tensor]:
    """Nearest-codebook quantisation with the VQ-VAE loss and a straight-through gradient.

    ``z`` (N, D) encoder outputs, ``codebook`` (K, D). Returns ``(z_q, loss, indices)``:
    ``z_q`` equals the nearest code e_k in value, but its gradient flows to ``z`` unchanged
    (z + sg[e - z]); ``loss = ||sg[z] - e||^2 + commitment * ||z - sg[e]||^2`` (means over
    elements) trains the codebook and commits the encoder; ``indices`` (N,) int64.
    """
    with _full_precision(z):
        zf, cb = z.float(), codebook.float()
        distances = torch.cdist(zf, cb)  # (N, K) Euclidean: same argmin as the squared form
        indices = distances.argmin(dim=1)
        e = cb[indices]
        loss = F.mse_loss(e, zf.detach()) + commitment * F.mse_loss(zf, e.detach())
        z_q = zf + (e - zf).detach()
    return z_q.to(z.dtype), loss, indices


def codebook_perplexity(indices: Tensor, n_codes: int) -> tuple[Tensor, Tensor]:
    """exp(entropy) of the code frequencies in ``indices`` (1 = a single code used, n_codes =
    all used equally) and the fraction of the codebook used at least once."""
    counts = torch.bincount(indices.flatten(), minlength=n_codes).float()
    p = counts / counts.sum().clamp_min(1.0)
    entropy = -(p * torch.log(p.clamp_min(1e-12))).sum()
    return entropy.exp(), (counts > 0).float().mean()


def huber_reconstruction(prediction: Tensor, target: Tensor, delta: float = 1.0) -> Tensor:
    """Mean Huber loss (Huber 1964) of a reconstructed signal, in float32 under autocast:
    0.5 e^2 where |e| <= delta, delta (|e| - 0.5 delta) beyond (NERULA's reconstruction loss)."""
    with _full_precision(prediction):
        return F.huber_loss(prediction.float(), target.float(), delta=float(delta))
