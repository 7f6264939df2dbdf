"""``frozen-probe``: a scikit-learn probe (:mod:`ecgbench.evaluation.probes`) on frozen embeddings, its
grid point chosen on the validation split."""

from __future__ import annotations

from typing import Any

from ecgbench.evaluation.protocols import EvalInputs, Outcome


class FrozenProbe:
    name = "frozen-probe"
    needs_windows = False

    @staticmethod
    def fit_predict(inputs: EvalInputs, probe: str, settings: Any, eval_settings: Any) -> Outcome:
        from ecgbench.evaluation import probes

        x, y, split, task = inputs.embeddings, inputs.y, inputs.split, inputs.task
        fit = probes.fit_probe(
            probe, task.kind, x[split["train"]], y[split["train"]], x[split["val"]], y[split["val"]],
            task.main_metric, inputs.seed, eval_settings.probe_grid, n_classes=inputs.n_classes,
        )
        prediction = probes.predict(fit, x[split["test"]], task.kind)
        return Outcome(prediction.y_pred, prediction.scores, fit.params, fit.val_score)
