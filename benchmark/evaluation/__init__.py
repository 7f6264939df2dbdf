"""Scoring an encoder: frozen embeddings (:mod:`.embedding`), the scikit-learn probes, the
evaluation protocols (:mod:`.protocols`: frozen-probe, linear, head, finetune), metrics with
patient bootstrap intervals, paired statistics (:mod:`.stats`), decoding and clustering
analyses. May import the layers below (core, data, models).
"""
