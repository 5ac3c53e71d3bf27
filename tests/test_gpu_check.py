"""benchmarks/gpu_check.py rehearsed on the CPU: both pipeline runs complete, every stage reports a time and a device.

    pytest tests/test_gpu_check.py
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO

pytestmark = pytest.mark.slow


def test_gpu_check_runs_on_the_cpu(tmp_path):
    out = tmp_path / "check"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--tiny",
                           "--cores", "2", "--paper-steps", "10", "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    for name in ("default", "paper"):
        run = summary["runs"][name]
        assert run["returncode"] == 0 and run["command"].startswith("snakemake --cores 2 --resources gpu=1 -- ")
        assert (out / name / "results" / "report.html").stat().st_size > 0
        stages = {key.split("/")[-1].split("-")[0] for key in run["stage_seconds"]}
        assert {"ingest", "segment", "train", "sample", "embedding", "evaluate"} <= stages
        devices = {k: v for k, v in run["devices"].items() if "per second" not in k}
        assert {k.split("/")[1].split("-")[0] for k in devices} == {"train", "sample", "embedding", "evaluate"}
        assert set(devices.values()) == {"cpu"}, devices
    # the paper-size run is benchmarks/quality-gpu.yaml cut short: five snapshots, each scored
    progress = summary["runs"]["paper"]["quality"]["embedded/progress"]
    assert [r["step"] for r in progress] == [2, 4, 6, 8, 10] and all(r["fad"] >= 0 for r in progress)
    for bench in ("training_benchmark", "sampling_benchmark"):  # run when the reference is installed, else said so
        assert "skipped" in summary[bench] or summary[bench]["machine"], summary[bench]


def test_a_budget_skips_what_it_cannot_start(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--tiny",
                           "--budget", "1", "--out", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    skipped = {"skipped": "out of time (--budget)"}
    assert summary["runs"] == {"default": skipped, "paper": skipped}
    assert summary["training_benchmark"] == summary["sampling_benchmark"] == skipped
    assert "cut short by --budget: default, paper" in proc.stdout


def test_a_budget_stops_a_pipeline_and_keeps_what_it_measured(tmp_path, monkeypatch):
    """A pipeline past its limit is stopped with all its jobs, and still reports its finished stages and the
    training rate (from the checkpoints: Snakemake removes the unfinished loss log)."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import gpu_check

    config = gpu_check.merge(yaml.safe_load((REPO / "config.yaml").read_text()), gpu_check.TINY)
    config["device"] = "cpu"
    config["train"] |= {"steps": 1_000_000, "checkpoint_every": 5}  # still training when the limit comes
    # training starts about 10 s in on an idle 2-core machine; 45 s leaves room for a busy one
    run = gpu_check.run_pipeline(tmp_path / "run", config, cores=2, limit=45)
    assert run["returncode"] is None and run["error"] == "stopped after 45 s (--budget)"
    assert {"embedded/ingest", "embedded/segment"} <= set(run["stage_seconds"]), run
    assert run["devices"]["embedded/train steps per second (median of rows)"] > 0, run
    left = [p for p in Path("/proc").glob("[0-9]*") if str(tmp_path) in _cmdline(p)]
    assert not left, [_cmdline(p) for p in left]  # no job of the run outlives it


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:  # ended meanwhile
        return ""
