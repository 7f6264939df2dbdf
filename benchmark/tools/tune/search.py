"""``ecgbench tune``: hyper-parameter search for one method's pretraining on Ray Tune.

A trial pretrains the method with one configuration (the pretraining loop of
:mod:`ecgbench.models.train`, on the windows the runner would train on) and, at a few points during
pretraining, embeds the task's training and validation records (:mod:`ecgbench.evaluation.embedding`), fits a
fast probe on train and reports its score on validation (:func:`ecgbench.evaluation.probes.fit_probe`).
The test split never leaves the driver. Optuna's TPE proposes configurations
(:class:`~ray.tune.search.optuna.OptunaSearch`) and ASHA stops trials that fall behind at a
report point (:class:`~ray.tune.schedulers.ASHAScheduler`). The default configuration of the
preset runs as the first trial and is never stopped early, so the closing table compares two
complete runs.

Each method declares its space beside its Config (:meth:`ecgbench.models.method.Method.search_space`);
``--set`` fixes settings (and takes a searched one out of the space).

``--protocol finetune`` searches the fine-tuning protocol's settings instead
(:func:`ecgbench.evaluation.protocols.finetune.finetune_search_space`, ``eval.finetune.*``): the method is
pretrained once with its default config (the runner's pretraining stage, cached as in ``run``),
and a trial fine-tunes that encoder with its settings on the task's training records, reporting
the best validation score so far after every epoch; the test records never reach a trial.

Files, under ``<results-dir>/tune/<name>/`` (``name`` from the method, task, preset, seed and a
hash of everything that shapes the search):

* ``trials/<trial>.json``: every trial's config, reports (step, score, loss, node), status; the truth;
* ``search.json``: the summary; ``best.yaml``: the best config for ``ecgbench run --config``;
* ``search.png``: validation score per trial and the best so far;
* ``ray/``: Ray Tune's experiment (``--resume`` restores it after a kill);
  ``partial/``: partial pretraining checkpoints, so an interrupted trial resumes mid-way.

Every trial is also an MLflow child run of the invocation's run (:mod:`ecgbench.running.tracking`).
A local Ray instance sized to the machine runs the trials unless ``--ray-address`` names a
cluster; trials then read and write ``<results-dir>``, which must be on storage every node sees.

This module is the driver: :func:`run_search` resolves the request (:mod:`.request`), loads the
trials' data once, starts or joins Ray, and runs (or restores) the Tuner with Optuna's TPE and
:class:`DefaultSparingASHA`, then writes the summary (:mod:`.summary`).
"""

from __future__ import annotations

import os
from typing import Any

from ray.tune.schedulers import ASHAScheduler

from ecgbench.core.config import ConfigError, RunFailed, derive_seed
from ecgbench.tools.tune.monitor import SearchMonitor
from ecgbench.tools.tune.request import Search, TuneRequest, resolve_search, trial_data
from ecgbench.tools.tune.space import is_default, ray_space
from ecgbench.tools.tune.summary import summarise
from ecgbench.tools.tune.trial import TrialData, run_trial

# Ray saves the experiment's state at most this often; a trial that finished after the last
# save of a killed search is not run again (run_trial replays its record).
CHECKPOINT_PERIOD_S = "2"


def run_search(request: TuneRequest, console=None) -> dict[str, Any]:
    """Resolve, run (or resume) the search, then write its summary, best config and plot."""
    from rich.console import Console

    search = resolve_search(request)
    console = console or Console(stderr=True)
    ray_dir = search.folder / "ray"
    if request.resume and not ray_dir.exists():
        raise ConfigError(f"--resume: no search to resume at {search.folder}")
    if not request.resume and ray_dir.exists():
        raise ConfigError(f"{search.folder} holds this search already; pass --resume to continue it "
                          "(or delete the folder to start over)")
    for note in search.notes:
        console.log(f"search space: {note}")
    from ecgbench.running.stages.context import RunContext

    ctx = RunContext(search.plan, console)
    data = trial_data(search, ctx)
    started_ray = _start_ray(request)
    try:
        _fit(search, data, console)
    finally:
        if started_ray:
            import ray

            ray.shutdown()
    return summarise(search, console)


def _start_ray(request: TuneRequest) -> bool:
    """Connect to ``--ray-address`` or start a local instance sized to this machine; returns
    whether this process started it (and should stop it)."""
    import logging

    import ray

    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", CHECKPOINT_PERIOD_S)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # with verbose=0: the trial table is ours
    if ray.is_initialized():
        return False
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    if request.ray_address:
        ray.init(address=request.ray_address, **quiet)
    else:
        ray.init(address="local", num_cpus=os.cpu_count() or 1, **quiet)  # never a cluster found by chance
    return True


def _fit(search: Search, data: TrialData, console) -> None:
    from ray import tune

    request = search.request
    resources = {"cpu": request.cpus_per_trial, "gpu": request.gpus_per_trial}
    trainable = tune.with_resources(tune.with_parameters(run_trial, data=data), resources)
    ray_dir = search.folder / "ray"
    if request.resume:
        if not tune.Tuner.can_restore(str(ray_dir)):
            raise RunFailed(f"{ray_dir}: Ray's experiment state is missing or unreadable; "
                            "delete the folder to start over")
        console.log(f"resuming the search in {search.folder}")
        tuner = tune.Tuner.restore(str(ray_dir), trainable=trainable, resume_unfinished=True, resume_errored=True)
    else:
        tuner = tune.Tuner(trainable, param_space=ray_space(search.space),
                           tune_config=_tune_config(search),
                           run_config=tune.RunConfig(name="ray", storage_path=str(search.folder), verbose=0,
                                                     callbacks=[SearchMonitor(search)]))
    tuner.fit()


def _tune_config(search: Search):
    import optuna
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    request = search.request
    seed = derive_seed(request.seed, "tune-search")
    # TPE's default of 10 random start-up trials would leave a short search all random.
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(2, request.trials // 3)))
    searcher = OptunaSearch(sampler=sampler, points_to_evaluate=[search.default])
    scheduler = DefaultSparingASHA(
        search.default, time_attr="step", max_t=search.milestones[-1], grace_period=search.milestones[0],
        reduction_factor=request.reduction_factor)
    return tune.TuneConfig(metric="score", mode=search.mode, search_alg=searcher, scheduler=scheduler,
                           num_samples=request.trials, reuse_actors=True)


class DefaultSparingASHA(ASHAScheduler):
    """ASHA that records the default configuration's scores at every rung but never stops it."""

    def __init__(self, default: dict[str, Any], **kwargs):
        super().__init__(**kwargs)
        self.default = default

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        decision = super().on_trial_result(tune_controller, trial, result)
        return self.CONTINUE if is_default(trial.config, self.default) else decision
