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


def command(workdir, target=TRAINED):
    return [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
            "--cores", "2", target]  # fmt: skip


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """A training run SIGKILLed with its whole process group (as the OOM killer or a power cut leaves things),
    then the same command again -> (workdir, the step killed at, the second run)."""
    workdir = tmp_path_factory.mktemp("killed")
    (workdir / "config.yaml").write_text(yaml.safe_dump(KILLED))
    first = subprocess.Popen(command(workdir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    checkpoints = workdir / "results" / "embedded" / "checkpoints"
    deadline = time.monotonic() + 240
    try:
        while not list(checkpoints.glob("*/step-*.pt")):
            assert first.poll() is None, "the first run ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 4 minutes"
            time.sleep(0.05)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    assert list((workdir / ".snakemake" / "locks").glob("*.lock")), "the kill left no lock: nothing was tested"
    killed_at = max(int(p.stem.split("-")[1]) for p in checkpoints.glob("*/step-*.pt"))
    return workdir, killed_at, subprocess.run(command(workdir), capture_output=True, text=True)


def test_sigkill_mid_training_then_the_same_command_resumes(killed):
    workdir, killed_at, again = killed
    said = again.stdout + again.stderr
    assert killed_at < 120 and again.returncode == 0, said[-4000:]
    assert "removed the locks a killed run left" in said
    log = (workdir / "results" / "logs" / "embedded" / "train.log").read_text()
    assert "resuming from" in log, log[-2000:]
    loss = pd.read_csv(workdir / TRAINED)
    assert loss["step"].tolist() == list(range(10, 121, 10))  # the rows before the kill too


def test_an_unreadable_model_file_is_one_line_naming_it(killed):
    workdir = killed[0]
    model = workdir / "results" / "embedded" / "model.pt"
    model.write_bytes(model.read_bytes()[:3000])
    proc = subprocess.run(command(workdir, "results/embedded/samples/waveform-steps-6/samples.npy"), capture_output=True, text=True)
    said = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert ("sample failed: dataset embedded: results/embedded/model.pt is unreadable (PytorchStreamReader failed "
            "reading zip archive: failed finding central directory): delete it and run the same command again") in said
