"""A run killed outright, and settings that change nothing: the same command carries on, and nothing reruns for nothing.

    pytest tests/test_recovery.py
"""

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import yaml
from conftest import REPO
from test_workflow import planned_rules, snakemake

pytestmark = pytest.mark.slow

# One small dataset and a model that trains in seconds; enough steps to be killed part-way through.
KILLED = {
    "embedded_corpus": {"clips_per_category": 1, "seconds": [1.0, 1.5]},
    "datasets": {"embedded": {"root": "results/embedded_corpus", "segment_seconds": 0.5}},
    "model": {"residual_layers": 2, "residual_channels": 8},
    "train": {"steps": 120, "batch_size": 2, "crop_seconds": 0.25, "checkpoint_every": 10, "log_every": 10},
    "device": "cpu",
}  # fmt: skip
TRAINED = "results/embedded/loss.csv"  # the README's command, with the training stage as its target


def test_sigkill_mid_training_then_the_same_command_resumes(tmp_path):
    """SIGKILL to the whole process group (as the OOM killer or a power cut leaves things): the same command resumes."""
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(KILLED))
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
               "--cores", "2", TRAINED]  # fmt: skip
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    checkpoints = tmp_path / "results" / "embedded" / "checkpoints"
    deadline = time.monotonic() + 240
    try:
        while not list(checkpoints.glob("*/step-*.pt")):
            assert first.poll() is None, "the first run ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 4 minutes"
            time.sleep(0.05)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    assert list((tmp_path / ".snakemake" / "locks").glob("*.lock")), "the kill left no lock: nothing was tested"
    killed_at = max(int(p.stem.split("-")[1]) for p in checkpoints.glob("*/step-*.pt"))
    assert killed_at < 120

    again = subprocess.run(command, capture_output=True, text=True)
    said = again.stdout + again.stderr
    assert again.returncode == 0, said[-4000:]
    assert "removed the locks a killed run left" in said
    log = (tmp_path / "results" / "logs" / "embedded" / "train.log").read_text()
    assert "resuming from" in log, log[-2000:]
    loss = pd.read_csv(tmp_path / TRAINED)
    assert loss["step"].tolist() == list(range(10, 121, 10))  # the rows before the kill too
