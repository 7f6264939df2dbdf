"""Multi-process pretraining (DDP, gloo on CPU) and a grid split into shards.

The DDP test trains a tiny deterministic method with SimCLR's NT-Xent in 2 processes (global
batch 8 = 2 x 4) and in 1 process (batch 8) over the same global batches, and checks that the
losses and the checkpoint match: that needs both DDP's gradient averaging and the loss's
all_gather with gradients to be right (without the gather, each rank would contrast only its
own 4 samples and the numbers would differ).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from netutil import free_port
from torch import nn

from ecgbench.models.losses import nt_xent
from ecgbench.models.method import Method, MethodConfig

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class TinyContrastive(Method):
    """A linear encoder trained with NT-Xent between a window and its time reversal."""

    name = "tiny-contrastive"

    @dataclass
    class Config(MethodConfig):
        leads: tuple[str, ...] = ("I",)
        n_samples: int = 16
        batch_size: int = 8
        max_steps: int = 5  # 2 steps per epoch: crosses two epoch boundaries
        lr: float = 0.05
        grad_clip: float = 0.0

    def __init__(self, config: Config):
        super().__init__(config)
        self.encoder = nn.Linear(16, 6)
        self.encoder.embedding_dim = 6

    def training_step(self, batch):
        x = batch["signal"].flatten(1)  # (B, 16)
        return {"loss": nt_xent(self.encoder(x), self.encoder(x.flip(-1)), temperature=0.5)}


def _windows() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((16, 1, 16)).astype(np.float32)


def _train(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    try:
        from ecgbench.models.train import WindowDataset, pretrain

        torch.manual_seed(rank)  # different inits per rank: DDP must broadcast rank 0's
        method = TinyContrastive(TinyContrastive.Config())
        data = WindowDataset(_windows(), np.arange(16), np.arange(16))
        stats = pretrain(method, data, seed=3, device=torch.device("cpu"),
                         partial_path=Path(out) / f"partial-{world}.pt", checkpoint_every=2)
        if rank == 0:
            torch.save({"model": method.state_dict(), "curve": stats.loss_curve}, Path(out) / f"world{world}.pt")
    finally:
        torch.distributed.destroy_process_group()



def test_two_process_ddp_matches_one_process_with_the_same_global_batch(tmp_path):
    mp.spawn(_train, args=(1, free_port(), str(tmp_path)), nprocs=1, join=True)
    mp.spawn(_train, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    one, two = torch.load(tmp_path / "world1.pt"), torch.load(tmp_path / "world2.pt")
    assert len(one["curve"]) == len(two["curve"]) == 5
    for (step_1, loss_1), (step_2, loss_2) in zip(one["curve"], two["curve"]):
        assert step_1 == step_2 and loss_2 == pytest.approx(loss_1, rel=1e-5)
    for name, value in one["model"].items():
        torch.testing.assert_close(two["model"][name], value, rtol=1e-5, atol=1e-6)
    # the loss did move: the comparison is not between two untrained models
    assert one["curve"][-1][1] < one["curve"][0][1]
    # one writer saved the partial checkpoints at steps 2 and 4 (5 steps, checkpoint_every=2)
    assert torch.load(tmp_path / "partial-2.pt", weights_only=False)["step"] == 4


def test_sharded_jobs_partition_the_grid():
    from ecgbench.running.runner import Runner, RunRequest

    def jobs(shard):
        runner = Runner.__new__(Runner)
        runner.request = RunRequest(methods=["a", "b", "c"], tasks=[], probes=[], seeds=[0, 1], shard=shard)
        return runner.jobs()

    every = jobs((0, 1))
    assert len(every) == 6
    parts = [jobs((i, 4)) for i in range(4)]
    assert sorted(j for part in parts for j in part) == sorted(every)
    assert sum(len(p) for p in parts) == len(every)  # no job in two shards
    assert jobs((1, 4)) == jobs((1, 4))  # deterministic


def test_bad_shard_is_a_one_line_error(capsys):
    from ecgbench.cli import main

    assert main(["run", "--methods", "random-init", "--shard", "4/4"]) == 2
    assert capsys.readouterr().err.strip() == "ecgbench: error: --shard 4/4: need 0 <= i < n"


@pytest.mark.slow
def test_two_concurrent_shards_share_one_results_dir_and_mlflow_server(tmp_path, mlflow_server):
    results = tmp_path / "results"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ECGBENCH_DATA": os.environ.get("ECGBENCH_DATA", "")}
    base = [sys.executable, "-m", "ecgbench", "run", "--methods", "random-init,clocs", "--seeds", "0,1",
            "--tasks", "synth-sex", "--probes", "lr", "--preset", "smoke", "--results-dir", str(results),
            "--tracking-uri", mlflow_server, "--set", "data.n_patients=200"]
    if not env["ECGBENCH_DATA"]:
        env.pop("ECGBENCH_DATA")
    shards = [subprocess.Popen([*base, "--shard", f"{i}/2"], env=env, cwd=PROJECT_ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outputs = [shard.communicate(timeout=600) for shard in shards]
    for shard, (_, err) in zip(shards, outputs):
        assert shard.returncode == 0, err[-2000:]
    stored = sorted(results.glob("runs/*/*/*.json"))
    keys = [json.loads(p.read_text())["key"] for p in stored]
    assert len(stored) == 4 and len(set(keys)) == 4  # 2 methods x 2 seeds x 1 task x 1 probe
    assert not list(results.rglob("*.tmp"))
    # the union is readable as one table
    table = subprocess.run([sys.executable, "-m", "ecgbench", "table", "--results-dir", str(results)],
                           capture_output=True, text=True, cwd=PROJECT_ROOT, env=env)
    assert table.returncode == 0 and "clocs" in table.stdout and "random-init" in table.stdout
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_server)
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    top = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(top) >= 2  # one ecgbench run per shard, both on the shared server
