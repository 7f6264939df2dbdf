"""``ecgbench bench``: the measurements are well-formed and the FLOP count is right."""

from __future__ import annotations

import io
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from ecgbench.cli import main
from ecgbench.tools.bench import (
    BenchSettings,
    bench_cache_hit_vs_floor,
    bench_wfdb_vs_prepared,
    count_training_flops,
    largest_batch,
    peak_tflops,
    pretraining_hours,
    render_bench,
    reported_compute,
    run_bench,
)


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
    assert simclr.preset_max_steps == 12 and simclr.preset_batch_size == 16
    assert simclr.pretrain_hours == pytest.approx(12 * 16 / simclr.train_samples_per_s / 3600)
    speed, pretraining = render_bench(results).split("\n\n")
    assert speed.count("\n") == 3 and "simclr" in speed
    assert pretraining.count("\n") == 3 and "not reported" in pretraining


def test_a_failing_method_is_reported_not_raised(one_torch_thread, monkeypatch):
    from ecgbench.core.registry import METHODS

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


def test_cache_hit_vs_floor_times_both_sides_on_one_store(tmp_path):
    store = tmp_path / "signals.npy"
    np.save(store, np.ones((4, 2, 50), dtype=np.float32))
    (tmp_path / "meta.csv").write_text("record_id\n1\n2\n3\n4\n")
    calls = []

    def load():
        calls.append(1)
        return np.load(store, mmap_mode="r")

    report = bench_cache_hit_vs_floor(load, store, f"import numpy as np\nsignals = np.load({str(store)!r})", rounds=2)
    assert len(calls) == 2 and report["floor_rounds"] == 2
    for side in ("", "fresh_process_"):
        assert min(report[f"{side}{field}"] for field in ("cache_hit_seconds", "mmap_floor_seconds",
                                                           "cache_hit_over_floor")) >= 0
    # a fresh process starts an interpreter and imports numpy and pandas: far above the floor here
    assert report["fresh_process_mmap_floor_seconds"] > report["mmap_floor_seconds"]


def test_bench_data_ptbxl_reports_the_cache_hit_against_the_floor(tmp_path):
    from rich.console import Console

    from ecgbench.tools.bench import bench_data_loading
    shared = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ptb-xl"
    if not shared.is_dir():
        pytest.skip("shared PTB-XL subset absent")
    root = tmp_path / "ptb-xl"
    root.mkdir()
    for name in ("ptbxl_database.csv", "scp_statements.csv"):
        shutil.copy(shared / name, root)
    shutil.copytree(shared / "records100" / "00000", root / "records100" / "00000",
                    ignore=lambda folder, names: [n for n in names if n[:5] > "00010"])

    report = bench_data_loading("ptbxl", tmp_path, None, Console(file=io.StringIO()), floor_rounds=1)
    assert report["records"] == 10 and report["floor_rounds"] == 1
    assert report["fresh_process_cache_hit_over_floor"] > 0


def test_bench_command_writes_json(tmp_path, capsys, one_torch_thread):
    out = tmp_path / "bench.json"
    code = main(["bench", "--methods", "clocs", "--preset", "smoke", "--device", "cpu", "--steps", "1",
                 "--warmup", "0", "--probe-records", "60", "--out", str(out)])
    assert code == 0
    record = json.loads(out.read_text())
    assert record["methods"][0]["method"] == "clocs" and record["settings"]["preset"] == "smoke"
    assert "| clocs" in capsys.readouterr().out


def test_one_pretraining_is_steps_times_batch_over_throughput():
    # ST-MEM's paper preset: 10,000 steps of 256 windows at 2,707 samples/s (H100, eager)
    assert pretraining_hours(10_000, 256, 2707.0) == pytest.approx(10_000 * 256 / 2707.0 / 3600)
    assert pretraining_hours(10_000, 256, 2707.0) == pytest.approx(0.2627, abs=1e-4)
    assert pretraining_hours(100, 4096, 4096.0) == pytest.approx(100 / 3600)
    for nothing in (0.0, None, float("nan"), -1.0):
        assert pretraining_hours(100, 16, nothing) is None


def test_reported_compute_names_its_source_or_says_not_reported():
    nerula = reported_compute("nerula-ladder-latent")
    assert nerula["hardware"] == "1x NVIDIA GeForce RTX 4090" and "seed 002" in nerula["source"]
    assert nerula["time"] == "not reported"
    assert reported_compute("dual-view-seqaug")["time"] == "10 h"
    assert reported_compute("ecg-jepa-hybrid")["hardware"] == "not reported"
    assert reported_compute("transform-cnn-res123")["time"].startswith("~1.05 h")
    assert reported_compute("simclr") == reported_compute("byol")  # no seed reports their compute
    assert "no seed report" in reported_compute("simclr")["source"]


def test_largest_batch_doubles_until_a_step_no_longer_fits():
    tried = []

    def fits(batch):
        tried.append(batch)
        return batch <= 1000

    assert largest_batch(fits, 128) == 512 and tried == [256, 512, 1024]
    assert largest_batch(lambda b: False, 128) == 128
    assert largest_batch(lambda b: True, 128, max_doublings=2) == 512


def test_auto_batch_keeps_the_preset_batch_on_cpu(one_torch_thread):
    settings = BenchSettings(preset="smoke", device="cpu", steps=1, warmup=0, probe_records=0,
                             batch_size="auto")
    (result,) = run_bench(["simclr"], settings)
    assert result.error is None and result.batch_size == 16 and result.probe_fit_seconds == {}


def test_a_method_with_a_derived_input_is_benched_with_it(one_torch_thread):
    settings = BenchSettings(preset="smoke", device="cpu", steps=1, warmup=0, probe_records=0)
    (result,) = run_bench(["ecg-jepa-hybrid"], settings)
    assert result.error is None and result.train_samples_per_s > 0 and result.embed_samples_per_s > 0
