"""The runner's stages, one small module each, all working on one :class:`RunContext`:

- :mod:`.context`   shared state: plan, store, device, loaded datasets, the leakage guard
- :mod:`.pretrain`  a (method, seed) run: config, train or reuse, checkpoint and run record
- :mod:`.embed`     frozen embeddings per (run, dataset, input spec), cached
- :mod:`.evaluate`  a protocol on embeddings: fit on train, select on val, score test
- :mod:`.record`    results and tables written, the MLflow view logged

:class:`ecgbench.running.runner.Runner` walks the grid and calls them in that order.
"""
