"""Models and their training: the Method contract (:mod:`.method`), encoders and the ViT,
pure loss functions, masking, augmentations, EMA, the pretraining loop (:mod:`.train`) and the
torch.distributed helpers it shares with the losses. Methods in ``methods/`` are built from
these. May import :mod:`ecgbench.core` and :mod:`ecgbench.data`.
"""
