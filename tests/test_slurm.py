"""The README's SLURM commands, run for real: a one-node cluster on this machine (tests/slurm/cluster.py:
Debian's slurmctld, slurmd, slurmdbd and munged, with MariaDB for accounting), the workflow on a tiny
config submitted through profiles/slurm as it is, each job checked in `sacct`, then a dry rerun.

Skipped where the SLURM binaries (or root) are missing; .ci/run installs them.

    pytest tests/test_slurm.py
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import copy_repo
from test_workflow import TINY

sys.path.insert(0, str(Path(__file__).parent / "slurm"))
import cluster  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.skipif(bool(cluster.missing()), reason=f"no local SLURM: {cluster.missing()}")]

# The README's cluster command. The status-check flags only shorten the plugin's waits (40 s before the
# first check, then 10 s more after every check that finds nothing finished), which would dominate
# jobs of a few seconds; a site has no reason to set them.
README = ["results/report.html", "--workflow-profile", "profiles/slurm"]
QUICK = ["--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "1"]
# The profile asks for 4 to 8 CPUs a job, which the test cluster's node claims and this machine has not: a job of each
# thread (as the tests' other pipeline runs), so that several at once don't leave their threads waiting on each other.
ONE_THREAD = ["--max-threads", "1"]
# One dataset, one step count, the mel route with the trained vocoder: every kind of rule that asks for a GPU (a
# training, sampling, vocoding) goes through the scheduler, in the fewest jobs (each costs a submission and a Python
# start on the node). The waveform route's rules ask the profile for the same things as the prior's; the listening
# study, the snapshots and the utility stage ask for nothing the rules kept here don't.
CONFIG = TINY | {
    "datasets": {"embedded": TINY["datasets"]["embedded"]},
    "generators": ["mel"],
    "vocoder": TINY["vocoder"] | {"kinds": ["diffwave"]},
    "sampling": TINY["sampling"] | {"steps": [6]},
    "train": TINY["train"] | {"snapshot_every": 0},
    "mel_prior": TINY["mel_prior"] | {"train": TINY["mel_prior"]["train"] | {"snapshot_every": 0}},
    "listening": {"enabled": False},
    "utility": {"enabled": False},
}
SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: \S*/rule_(\w+?)/")


def snakemake(slurm, repo, *args, timeout):
    cmd = [sys.executable, "-m", "snakemake", *args]
    proc = subprocess.run(cmd, cwd=repo, env=slurm.env(), capture_output=True, text=True, timeout=timeout)
    if proc.returncode:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
                             f"{proc.stderr[-6000:]}\n{slurm.logs()}")
    return proc


@pytest.fixture(scope="module")
def slurm():
    with cluster.LocalSlurm() as c:
        yield c


@pytest.fixture(scope="module")
def run(slurm, tmp_path_factory):
    repo = copy_repo(tmp_path_factory.mktemp("slurm"))
    (repo / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    proc = snakemake(slurm, repo, *README, *QUICK, *ONE_THREAD, timeout=420)
    log = proc.stdout + proc.stderr
    jobs = {slurm_id: rule for _, slurm_id, rule in SUBMITTED.findall(log)}
    # every job of this cluster's life: without --starttime, sacct lists only those since midnight, and a run that
    # crossed it lost its first jobs
    accounting = slurm.run("sacct", "-X", "-P", "-n", "--starttime", "now-2days",
                           "-o", "JobIDRaw,State,Partition,AllocTRES,ExitCode").stdout
    return repo, log, jobs, {line.split("|")[0]: line.split("|") for line in accounting.splitlines()}


def test_every_job_went_through_the_scheduler(run):
    repo, log, jobs, sacct = run
    done = re.findall(r"(\d+) of (\d+) steps \(100%\) done", log)
    assert done, log[-3000:]
    assert len(jobs) == int(done[-1][1]) >= 15  # one SLURM job per workflow job, none retried
    assert {"ingest", "segment", "mel", "train_prior", "sample_prior", "evaluate", "report"} <= set(jobs.values())
    with_gpu = set()
    for slurm_id, rule in jobs.items():
        _, state, partition, tres, exit_code = sacct[slurm_id]
        assert (state, exit_code) == ("COMPLETED", "0:0"), (rule, sacct[slurm_id])
        if "gres/gpu=1" in tres:
            with_gpu.add(rule)
        # a rule that declares gpu=1 gets --gpus=1, so the profile must send it to a partition that has GPUs
        assert partition == ("gpu" if "gres/gpu=1" in tres else "cpu"), (rule, sacct[slurm_id])
    # exactly the rules that declare gpu=1 (as the log prints each job's resources)
    declared = set(re.findall(r"^rule (\w+):\n(?:    .*\n)*?    resources: .*\bgpu=1\b", log, re.M))
    assert with_gpu == declared and {"train_prior", "sample_prior", "train_vocoder", "vocode_trained"} <= declared


def test_the_report_is_made(run):
    repo, log, jobs, sacct = run
    report = repo / "results" / "report.html"
    assert report.stat().st_size > 0
    assert "embedded" in report.read_text()
    # no CUDA behind the scheduler's GPU: `auto` fell back to the CPU
    assert "training on cpu" in (repo / "results" / "logs" / "embedded" / "train_prior.log").read_text()


def test_a_rerun_has_nothing_to_do(run, slurm):
    repo = run[0]
    proc = snakemake(slurm, repo, "-n", *README, timeout=120)
    assert "Nothing to be done" in proc.stdout + proc.stderr, proc.stdout[-3000:]
