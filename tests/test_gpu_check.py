"""benchmarks/gpu_check.py rehearsed on the CPU: both pipeline runs complete, every stage reports a time and a device.

    pytest tests/test_gpu_check.py
"""

import json
import subprocess
import sys

import pytest
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
