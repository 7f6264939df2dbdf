"""``ecgbench tune``: hyper-parameter search for one method's pretraining (or for the fine-tuning
protocol's settings) on Ray Tune with Optuna's TPE and ASHA, one module per part:
:mod:`.space` the search space a method declares, checked and widened to cover the preset's
default; :mod:`.trial` one trial, run in a Ray worker (pretrain or fine-tune with a config and
report validation scores); :mod:`.request` a request resolved into a :class:`Search` and the
data every trial needs; :mod:`.monitor` the driver's callback that writes trial records, logs
them to MLflow and shows the live trial table; :mod:`.summary` the closing table, ``best.yaml``,
``search.json`` and ``search.png``; :mod:`.search` the driver, :func:`run_search`, which starts
Ray and runs (or resumes) the search. Each imports only the ones before it in that list. Every
name below stays importable from ``ecgbench.tools.tune`` (Ray's saved experiment state of a
search started before the split refers to some of them by that path).
"""

from ecgbench.tools.tune.monitor import REPORT_KEYS, SearchMonitor, ran_to_the_end, trial_table
from ecgbench.tools.tune.request import Search, TuneRequest, resolve_search, trial_data
from ecgbench.tools.tune.search import CHECKPOINT_PERIOD_S, DefaultSparingASHA, run_search
from ecgbench.tools.tune.space import (
    DOMAINS,
    INPUT_FIELDS,
    checked_space,
    covering_default,
    declared_space,
    is_default,
    milestones,
    ray_space,
)
from ecgbench.tools.tune.summary import load_records, plot_search, set_lines, summarise, write_best
from ecgbench.tools.tune.trial import (
    FINISHED,
    TrialData,
    finetune_trial,
    pretrain_trial,
    run_trial,
    trial_key,
    validation_score,
)

__all__ = [
    "CHECKPOINT_PERIOD_S", "DOMAINS", "FINISHED", "INPUT_FIELDS", "REPORT_KEYS", "DefaultSparingASHA", "Search",
    "SearchMonitor", "TrialData", "TuneRequest", "checked_space", "covering_default", "declared_space",
    "finetune_trial", "is_default", "load_records", "milestones", "plot_search", "pretrain_trial",
    "ran_to_the_end", "ray_space", "resolve_search", "run_search", "run_trial", "set_lines", "summarise",
    "trial_data", "trial_key", "trial_table", "validation_score", "write_best",
]
