"""Losses alone: known values, a naive re-implementation, and independent libraries."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ecgbench.models.losses import byol_loss, multitask_bce, negative_cosine, nt_xent


def _pairs(n: int = 6, d: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)


def _naive_nt_xent(z1: torch.Tensor, z2: torch.Tensor, t: float) -> float:
    """Chen et al. eq. 1 written out with loops."""
    z = torch.cat([z1, z2]).tolist()
    n = len(z1)

    def sim(a, b):
        return sum(x * y for x, y in zip(a, b)) / (math.dist(a, [0] * len(a)) * math.dist(b, [0] * len(b)))

    total = 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        denominator = sum(math.exp(sim(z[i], z[k]) / t) for k in range(2 * n) if k != i)
        total += -math.log(math.exp(sim(z[i], z[j]) / t) / denominator)
    return total / (2 * n)


# ----- NT-Xent -----------------------------------------------------------------------------------
def test_nt_xent_identical_orthogonal_views_hand_computed():
    # Two samples e1, e2, each view identical to its pair: for every anchor the positive has
    # cosine 1 and the two negatives cosine 0, so the loss is log(1 + 2 exp(-1/t)).
    e = torch.eye(2)
    for t in (0.1, 0.5, 1.0):
        expected = math.log(1 + 2 * math.exp(-1 / t))
        assert nt_xent(e, e.clone(), t).item() == pytest.approx(expected, rel=1e-4, abs=1e-6)


def test_nt_xent_matches_naive_loops_and_ignores_norms():
    z1, z2 = _pairs()
    expected = _naive_nt_xent(z1, z2, 0.5)
    assert nt_xent(z1, z2, 0.5).item() == pytest.approx(expected, rel=1e-5)
    assert nt_xent(3 * z1, 0.2 * z2, 0.5).item() == pytest.approx(expected, rel=1e-5)


def test_nt_xent_lower_for_aligned_than_for_random_pairs():
    z1, z2 = _pairs()
    assert nt_xent(z1, z1 + 0.01 * z2, 0.1) < nt_xent(z1, z2, 0.1)


def test_nt_xent_matches_lightly():
    lightly_loss = pytest.importorskip("lightly.loss")
    z1, z2 = _pairs(n=8, d=16)
    for t in (0.1, 0.5):
        reference = lightly_loss.NTXentLoss(temperature=t, memory_bank_size=0)(z1, z2)
        assert nt_xent(z1, z2, t).item() == pytest.approx(reference.item(), rel=1e-5)


def test_nt_xent_matches_pytorch_metric_learning():
    pml = pytest.importorskip("pytorch_metric_learning.losses")
    z1, z2 = _pairs(n=8, d=16)
    # Row i of both views shares label i: one positive per anchor, the other 2N - 2 negatives;
    # pml averages over the 2N ordered positive pairs, as SimCLR averages over the 2N anchors.
    labels = torch.arange(8).repeat(2)
    for t in (0.1, 0.5):
        reference = pml.NTXentLoss(temperature=t)(torch.cat([z1, z2]), labels)
        assert nt_xent(z1, z2, t).item() == pytest.approx(reference.item(), rel=1e-5)


def test_nt_xent_gradients_flow_to_both_views():
    z1, z2 = (z.requires_grad_() for z in _pairs())
    nt_xent(z1, z2, 0.5).backward()
    assert z1.grad.abs().sum() > 0 and z2.grad.abs().sum() > 0


# ----- BYOL / negative cosine --------------------------------------------------------------------
def test_byol_loss_known_values():
    p = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert byol_loss(p, 5 * p).item() == pytest.approx(0.0, abs=1e-6)  # identical directions
    assert byol_loss(p, -p).item() == pytest.approx(4.0)  # opposite
    assert byol_loss(p, p.flip(1)).item() == pytest.approx(2.0)  # orthogonal


def test_byol_loss_is_normalized_mse():
    p, z = _pairs()
    mse = (F.normalize(p, dim=1) - F.normalize(z, dim=1)).pow(2).sum(dim=1).mean()
    assert byol_loss(p, z).item() == pytest.approx(mse.item(), rel=1e-5)


def test_byol_loss_matches_lightly_negative_cosine():
    lightly_loss = pytest.importorskip("lightly.loss")
    p, z = _pairs(n=8, d=16)
    reference = 2 + 2 * lightly_loss.NegativeCosineSimilarity()(p, z)
    assert byol_loss(p, z).item() == pytest.approx(reference.item(), rel=1e-5)
    assert negative_cosine(p, z).item() == pytest.approx(
        lightly_loss.NegativeCosineSimilarity()(p, z).item(), rel=1e-5
    )


def test_negative_cosine_known_values():
    p = torch.tensor([[1.0, 1.0]])
    assert negative_cosine(p, 2 * p).item() == pytest.approx(-1.0)
    assert negative_cosine(p, torch.tensor([[1.0, -1.0]])).item() == pytest.approx(0.0, abs=1e-7)


# ----- multi-task BCE ----------------------------------------------------------------------------
def test_multitask_bce_per_task_and_weights():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(10, 3, generator=g)
    targets = (torch.rand(10, 3, generator=g) > 0.5).float()
    loss, per_task = multitask_bce(logits, targets, weights=(0.5, 0.25, 0.25))
    for k in range(3):
        expected = F.binary_cross_entropy_with_logits(logits[:, k], targets[:, k])
        assert per_task[k].item() == pytest.approx(expected.item(), rel=1e-6)
    assert loss.item() == pytest.approx((0.5 * per_task[0] + 0.25 * per_task[1:].sum()).item(), rel=1e-6)
    assert multitask_bce(logits, targets)[0].item() == pytest.approx(per_task.mean().item(), rel=1e-6)
    # Confident, correct logits give a loss near 0.
    assert multitask_bce(20 * (2 * targets - 1), targets)[0].item() < 1e-6


def test_multitask_bce_rejects_wrong_number_of_weights():
    with pytest.raises(ValueError, match="2 loss weights for 3 tasks"):
        multitask_bce(torch.zeros(4, 3), torch.zeros(4, 3), weights=(1.0, 1.0))


# ----- CLOCS patient contrastive -----------------------------------------------------------------
from ecgbench.models.losses import masked_mse, patient_contrastive  # noqa: E402


def _views(v: int = 2, n: int = 8, d: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.randn(v, n, d, generator=torch.Generator().manual_seed(seed))  # (V, B, D)


def _naive_patient_contrastive(views: torch.Tensor, pids: list[int], t: float) -> float:
    """Kiyasseh et al. eqs. 1-3 with loops: -log p(i, k) over same-patient (i, k), every
    ordered pair of distinct views, p a softmax over the other view's items."""
    z = F.normalize(views, dim=-1).tolist()
    n_views, n = len(z), len(pids)
    per_pair = []
    for a in range(n_views):
        for b in range(n_views):
            if a == b:
                continue
            terms = []
            for i in range(n):
                sims = [sum(x * y for x, y in zip(z[a][i], z[b][k])) / t for k in range(n)]
                log_denominator = math.log(sum(math.exp(s) for s in sims))
                terms += [log_denominator - sims[k] for k in range(n) if pids[k] == pids[i]]
            per_pair.append(sum(terms) / len(terms))
    return sum(per_pair) / len(per_pair)


def test_patient_contrastive_hand_computed_two_patients():
    # Two views of two instances of different patients, each view identical to its pair and
    # the instances orthogonal: every anchor has its positive at cosine 1 and one negative at
    # cosine 0 in the other view, so the loss is log(1 + exp(-1/t)).
    e = torch.eye(2)
    for t in (0.1, 0.5, 1.0):
        expected = math.log(1 + math.exp(-1 / t))
        loss = patient_contrastive(torch.stack([e, e.clone()]), torch.tensor([0, 1]), t)
        assert loss.item() == pytest.approx(expected, rel=1e-4, abs=1e-6)
    # One patient, all embeddings equal: both items of the other view are positives with
    # p = 1/2 each, so the loss is log 2 whatever the temperature.
    same = torch.ones(2, 2, 3)
    assert patient_contrastive(same, torch.tensor([7, 7]), 0.1).item() == pytest.approx(math.log(2))


@pytest.mark.parametrize("pids", [list(range(8)), [0, 0, 1, 1, 2, 2, 3, 3], [0, 0, 0, 1, 2, 2, 3, 4]])
@pytest.mark.parametrize("n_views", [2, 3])
def test_patient_contrastive_matches_naive_loops(pids, n_views):
    views = _views(v=n_views)
    expected = _naive_patient_contrastive(views, pids, 0.1)
    loss = patient_contrastive(views, torch.tensor(pids), 0.1)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert patient_contrastive(5 * views, torch.tensor(pids), 0.1).item() == pytest.approx(expected, rel=1e-5)


def test_patient_contrastive_distinct_patients_is_symmetric_cross_view_infonce():
    # Every patient distinct: CLIP's symmetric cross entropy over the cross-view matrix, and
    # pml's NTXentLoss with ref_emb (anchors in one view, candidates in the other), both ways.
    pml = pytest.importorskip("pytorch_metric_learning.losses")
    a, b = _views()
    labels = torch.arange(8)
    for t in (0.1, 0.5):
        logits = F.normalize(a, dim=1) @ F.normalize(b, dim=1).T / t
        clip = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
        # pml drops i == k pairs when ref_labels *is* labels (same object): pass a copy.
        ntxent = pml.NTXentLoss(temperature=t)
        reference = (ntxent(a, labels, ref_emb=b, ref_labels=labels.clone())
                     + ntxent(b, labels, ref_emb=a, ref_labels=labels.clone())) / 2
        loss = patient_contrastive(torch.stack([a, b]), labels, t)
        assert loss.item() == pytest.approx(clip.item(), rel=1e-5)
        assert loss.item() == pytest.approx(reference.item(), rel=1e-5)


def test_patient_contrastive_is_not_simclr_nt_xent():
    # NT-Xent also contrasts each anchor with the other items of its own view.
    a, b = _views()
    assert patient_contrastive(torch.stack([a, b]), torch.arange(8), 0.5).item() != pytest.approx(
        nt_xent(a, b, 0.5).item(), rel=1e-3)


def test_patient_contrastive_matches_supcon_with_equal_patient_counts():
    # With repeated patients, pml's SupConLoss (anchors vs the other view, every same-label
    # item a positive, the softmax over all candidates) averages per anchor, then over
    # anchors; CLOCS averages over all positive pairs at once. The two agree when every
    # patient has the same number of items, and differ otherwise. pml's NTXentLoss differs
    # in both cases: it leaves the other positives out of each denominator.
    pml = pytest.importorskip("pytorch_metric_learning.losses")
    a, b = _views()

    def both_ways(loss_fn, labels):
        return ((loss_fn(a, labels, ref_emb=b, ref_labels=labels.clone())
                 + loss_fn(b, labels, ref_emb=a, ref_labels=labels.clone())) / 2).item()

    equal = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    unequal = torch.tensor([0, 0, 0, 1, 2, 2, 3, 4])
    for t in (0.1, 0.5):
        supcon, ntxent = pml.SupConLoss(temperature=t), pml.NTXentLoss(temperature=t)
        ours = patient_contrastive(torch.stack([a, b]), equal, t).item()
        assert ours == pytest.approx(both_ways(supcon, equal), rel=1e-5)
        assert ours != pytest.approx(both_ways(ntxent, equal), rel=1e-3)
        ours = patient_contrastive(torch.stack([a, b]), unequal, t).item()
        assert ours != pytest.approx(both_ways(supcon, unequal), rel=1e-3)


def test_patient_contrastive_rewards_same_patient_agreement():
    # Items 0 and 1 share a patient. Making item 1's embeddings equal item 0's lowers the loss
    # when they are one patient, raises it when they are two.
    views = _views()
    agree = views.clone()
    agree[:, 1] = views[:, 0]
    shared, distinct = torch.tensor([0, 0, 1, 2, 3, 4, 5, 6]), torch.arange(8)
    assert patient_contrastive(agree, shared, 0.1) < patient_contrastive(views, shared, 0.1)
    assert patient_contrastive(agree, distinct, 0.1) > patient_contrastive(views, distinct, 0.1)


def test_patient_contrastive_gradients_and_input_checks():
    views = _views(v=3).requires_grad_()
    patient_contrastive(views, torch.arange(8) // 2, 0.1).backward()
    assert all(views.grad[v].abs().sum() > 0 for v in range(3))
    with pytest.raises(ValueError, match="at least 2 views"):
        patient_contrastive(_views(v=1), torch.arange(8), 0.1)
    with pytest.raises(ValueError, match="patient_ids"):
        patient_contrastive(_views(), torch.arange(7), 0.1)


# ----- masked MSE ---------------------------------------------------------------------------------
def test_masked_mse_counts_masked_tokens_only():
    target = torch.zeros(2, 4, 3)
    prediction = torch.zeros(2, 4, 3)
    prediction[0, 1] = 2.0  # masked: squared error 4 on each of 3 values
    prediction[1, 0] = 100.0  # visible: ignored
    mask = torch.tensor([[False, True, True, False], [False, False, True, False]])
    assert masked_mse(prediction, target, mask).item() == pytest.approx(4 / 3)
    assert masked_mse(prediction[..., 0], target[..., 0], mask).item() == pytest.approx(4 / 3)
    assert masked_mse(prediction, target, torch.zeros(2, 4, dtype=torch.bool)).item() == 0.0


# ----- Triplet margin loss and the diagnosis-sharing triplets -----------------------------------
from ecgbench.models.losses import (  # noqa: E402
    codebook_perplexity,
    diagnosis_pairs,
    sample_triplets,
    triplet_margin,
    vector_quantize,
)


def test_triplet_margin_on_hand_computed_values():
    a = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    p = torch.tensor([[3.0, 4.0], [1.0, 0.0]])  # d(a, p) = 5 and 1
    n = torch.tensor([[6.0, 8.0], [0.0, 0.5]])  # d(a, n) = 10 and 0.5
    # max(0, 5 - 10 + 1) = 0 and max(0, 1 - 0.5 + 1) = 1.5
    assert triplet_margin(a, p, n, margin=1.0).item() == pytest.approx(0.75)
    # squared: max(0, 25 - 100 + 1) = 0 and max(0, 1 - 0.25 + 1) = 1.75
    assert triplet_margin(a, p, n, margin=1.0, squared=True).item() == pytest.approx(0.875)
    empty = torch.zeros(0, 2, requires_grad=True)
    assert triplet_margin(empty, empty, empty).item() == 0.0


def test_triplet_margin_agrees_with_torch_and_pytorch_metric_learning():
    pml = pytest.importorskip("pytorch_metric_learning")
    from pytorch_metric_learning.distances import LpDistance
    from pytorch_metric_learning.losses import TripletMarginLoss
    from pytorch_metric_learning.reducers import MeanReducer

    torch.manual_seed(0)
    z = torch.randn(12, 5)
    a, p, n = torch.randint(0, 12, (3, 20))
    ours = triplet_margin(z[a], z[p], z[n], margin=0.5)
    assert ours.item() > 0  # some triplets violate the margin: the comparison is not vacuous
    theirs_torch = F.triplet_margin_loss(z[a], z[p], z[n], margin=0.5, eps=0.0)
    assert ours.item() == pytest.approx(theirs_torch.item(), rel=1e-5)
    loss = TripletMarginLoss(margin=0.5, distance=LpDistance(normalize_embeddings=False),
                             reducer=MeanReducer())
    theirs_pml = loss(z, torch.zeros(12), indices_tuple=(a, p, n))
    assert ours.item() == pytest.approx(theirs_pml.item(), rel=1e-5)
    squared = TripletMarginLoss(margin=0.5, reducer=MeanReducer(),
                                distance=LpDistance(normalize_embeddings=False, power=2))
    assert triplet_margin(z[a], z[p], z[n], 0.5, squared=True).item() == pytest.approx(
        squared(z, torch.zeros(12), indices_tuple=(a, p, n)).item(), rel=1e-5)


def test_diagnosis_pairs_for_class_ids_and_label_sets():
    positive, negative = diagnosis_pairs(torch.tensor([0, 1, 0]))
    assert positive.tolist() == [[False, False, True], [False, False, False], [True, False, False]]
    assert negative.tolist() == [[False, True, False], [True, False, True], [False, True, False]]
    sets = torch.tensor([[1, 0, 1], [1, 0, 1], [1, 1, 0], [0, 1, 0], [0, 0, 0], [0, 0, 0]])
    positive, negative = diagnosis_pairs(sets.float())
    assert positive[0, 1] and positive[4, 5]  # identical sets (also two empty ones)
    assert not positive[0, 2] and not negative[0, 2]  # partial overlap: neither
    assert negative[0, 3] and negative[0, 4]  # no label in common
    assert not positive.diagonal().any() and not negative.diagonal().any()


def test_sampled_triplets_respect_the_pairs():
    labels = torch.tensor([0, 0, 1, 1, 2])  # class 2 has no positive: never an anchor
    positive, negative = diagnosis_pairs(labels)
    a, p, n = sample_triplets(positive, negative, torch.Generator().manual_seed(0))
    assert a.tolist() == [0, 1, 2, 3]
    assert bool(positive[a, p].all()) and bool(negative[a, n].all())


# ----- Vector quantisation --------------------------------------------------------------------
def test_vector_quantize_picks_the_nearest_code_with_the_vq_vae_loss():
    codebook = torch.tensor([[0.0, 0.0], [1.0, 1.0], [-2.0, 0.0]])
    z = torch.tensor([[0.9, 1.2], [-1.5, 0.2]])
    z_q, loss, codes = vector_quantize(z, codebook, commitment=0.25)
    assert codes.tolist() == [1, 2]
    assert torch.allclose(z_q, codebook[codes])
    mse = ((z - codebook[codes]) ** 2).mean()
    assert loss.item() == pytest.approx((1 + 0.25) * mse.item())


def test_straight_through_gradient_and_loss_gradients():
    codebook = torch.tensor([[0.0, 0.0], [1.0, 1.0]], requires_grad=True)
    z = torch.tensor([[0.9, 1.2]], requires_grad=True)
    z_q, loss, _ = vector_quantize(z, codebook, commitment=0.5)
    weight = torch.tensor([[2.0, -3.0]])
    (z_q * weight).sum().backward()
    assert torch.equal(z.grad, weight)  # straight through: d z_q / d z = identity
    assert codebook.grad is None or not codebook.grad.any()  # z_q itself never moves the codes
    z.grad = None
    loss.backward()
    e = torch.tensor([[1.0, 1.0]])
    assert torch.allclose(z.grad, 0.5 * 2 * (z - e).detach() / 2)  # commitment: beta * mse'
    assert torch.allclose(codebook.grad[1], 2 * (e - z).detach()[0] / 2)  # codebook term


def test_codebook_perplexity_and_usage():
    one, usage = codebook_perplexity(torch.zeros(32, dtype=torch.long), 8)
    assert one.item() == pytest.approx(1.0) and usage.item() == pytest.approx(1 / 8)
    all_codes, usage = codebook_perplexity(torch.arange(8).repeat(4), 8)
    assert all_codes.item() == pytest.approx(8.0) and usage.item() == 1.0
    half, _ = codebook_perplexity(torch.tensor([0, 0, 1, 1]), 8)
    assert half.item() == pytest.approx(2.0)
