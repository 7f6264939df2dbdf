"""The data layer: records in, arrays out.

One module per source under :mod:`.datasets` (download, load, prepared memmap stores, the
catalogue read without importing them), :mod:`.adapt` (a dataset's records turned into an
encoder's input: leads, rate, windows), :mod:`.leakage` (what pretraining must never see),
:mod:`.clinical` (delineated ECG parameters, cached) and :mod:`.manage` (``ecgbench data``).
May import :mod:`ecgbench.core` only.
"""
