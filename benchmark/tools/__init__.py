"""Whole subcommands built on a run: :mod:`.bench` (speed per method) and :mod:`.tune`
(hyper-parameter search on Ray Tune with Optuna). May import every layer below.
"""
