"""``ecgbench bench``: the measurements are well-formed and the FLOP count is right."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from ecgbench.bench import (
    BenchSettings,
    bench_wfdb_vs_prepared,
    count_training_flops,
    peak_tflops,
    render_bench,
    run_bench,
)
from ecgbench.cli import main


class _Linear(nn.Module):
    def __init__(self, d_in: int, d_out: int):
        super().__init__()
        self.layer = nn.Linear(d_in, d_out, bias=False)

    def training_step(self, batch):
        return {"loss": self.layer(batch["signal"]).pow(2).mean()}


def test_flop_count_of_a_linear_layer_forward_and_backward():
    # forward x @ W^T: 2*B*I*O; backward: grad wrt W (2*B*I*O) only (the input needs none)
    model = _Linear(32, 16)
    flops = count_training_flops(model, {"signal": torch.randn(8, 32)})
    assert flops == 2 * (2 * 8 * 32 * 16)
    assert model.layer.weight.grad is None  # the count leaves no gradients behind


def test_peak_tflops_known_and_unknown_devices():
    assert peak_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert peak_tflops("NVIDIA H100 PCIe") == 756.0
    assert peak_tflops("NVIDIA H200") == 989.0
    assert peak_tflops("Some CPU") is None


def test_bench_smoke_on_cpu(one_torch_thread):
    settings = BenchSettings(preset="smoke", device="cpu", steps=1, warmup=1, probe_records=120)
    results = run_bench(["random-init", "simclr"], settings)
    by_name = {r.method: r for r in results}
    assert by_name["random-init"].train_samples_per_s == 0.0  # a control is not trained
    simclr = by_name["simclr"]
    assert simclr.error is None
    assert simclr.train_samples_per_s > 0 and math.isfinite(simclr.train_samples_per_s)
    assert simclr.loader_samples_per_s > 0 and 0 < simclr.busy_fraction <= 1
    assert simclr.flops_per_sample > 0 and simclr.mfu is None  # no MFU without a known peak
    assert set(simclr.probe_fit_seconds) == {"svc", "rf", "lr", "mlp", "knn"}
    table = render_bench(results)
    assert table.count("\n") == 3 and "simclr" in table


def test_a_failing_method_is_reported_not_raised(one_torch_thread, monkeypatch):
    from ecgbench.registry import METHODS

    def out_of_memory(self, batch):
        raise RuntimeError("CUDA out of memory (simulated)")

    monkeypatch.setattr(METHODS.get("simclr"), "training_step", out_of_memory)
    settings = BenchSettings(preset="smoke", device="cpu", steps=1, warmup=0, probe_records=60)
    (result,) = run_bench(["simclr"], settings)
    assert result.error == "RuntimeError: CUDA out of memory (simulated)"


def test_wfdb_vs_prepared_reads_the_same_records(tmp_path):
    import wfdb
    rng = np.random.default_rng(0)
    signals = rng.standard_normal((5, 2, 300)).astype(np.float32)
    stems = []
    for i, x in enumerate(signals):
        wfdb.wrsamp(f"r{i}", fs=100, units=["mV", "mV"], sig_name=["I", "II"], p_signal=x.T.astype(np.float64),
                    fmt=["16", "16"], write_dir=str(tmp_path))
        stems.append(tmp_path / f"r{i}")
    report = bench_wfdb_vs_prepared(stems, lambda: signals)
    assert report["records"] == 5 and report["speedup"] > 0
    assert report["checksum"] == pytest.approx(float(signals.sum()), rel=1e-5)


def test_bench_command_writes_json(tmp_path, capsys, one_torch_thread):
    out = tmp_path / "bench.json"
    code = main(["bench", "--methods", "clocs", "--preset", "smoke", "--device", "cpu", "--steps", "1",
                 "--warmup", "0", "--probe-records", "60", "--out", str(out)])
    assert code == 0
    record = json.loads(out.read_text())
    assert record["methods"][0]["method"] == "clocs" and record["settings"]["preset"] == "smoke"
    assert "| clocs" in capsys.readouterr().out
