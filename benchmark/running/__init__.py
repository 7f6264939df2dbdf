"""Doing a run: the request resolved into typed configs (:mod:`.plan`) and checked before any
work (:mod:`.validate`); the runner walking the grid through its stages (:mod:`.stages`:
pretrain, embed, evaluate, record), the CPU worker pool (:mod:`.parallel`), ``ecgbench run``
end to end (:mod:`.run_grid`, :mod:`.run_layout`) and the MLflow view (:mod:`.tracking`).
May import every layer below it (core, data, models, evaluation, reporting).
"""
