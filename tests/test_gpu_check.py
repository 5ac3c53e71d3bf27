"""benchmarks/gpu_check.py rehearsed on the CPU the way a GPU machine without a package registry runs it.

A stand-in for the GPU image (a fresh venv holding only the packages benchmarks/gpu_image.txt
names, linked from this venv), the wheels from benchmarks/gpu_wheels.sh --local installed by the
check itself with pip --no-index, and the whole check end to end under --budget: compile (dynamo
and AOT autograd: inductor's CPU code is nothing a GPU runs), the fused kernels (TRITON_INTERPRET=1),
bf16 training and fp16 sampling, the paper-size pipeline cut short, its files where the GPU machine
returns them.

    pytest tests/test_gpu_check.py

The wheels need PyPI once; they are kept in ~/.cache/cry-diffusion (CRY_DIFFUSION_CACHE) by a hash
of the script, the image list and this Python's version.
"""

import hashlib
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO

pytestmark = pytest.mark.slow

# seconds: the tiny check's parts before the default run take about 2 minutes on an idle 2-core machine, and fit
# beside the rest of the suite
BUDGET = 300
CHECK = REPO / "benchmarks" / "gpu_check.py"


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.lower())


def image_packages() -> set[str]:
    lines = (REPO / "benchmarks" / "gpu_image.txt").read_text().splitlines()
    return {norm(line) for line in lines if line.strip() and not line.startswith("#")}


@pytest.fixture(scope="module")
def wheels() -> Path:
    parts = [(REPO / "benchmarks" / f).read_bytes() for f in ("gpu_wheels.sh", "gpu_image.txt")] + [sys.version.encode()]
    key = hashlib.sha256(b"\0".join(parts)).hexdigest()[:12]
    cache = Path(os.environ.get("CRY_DIFFUSION_CACHE", Path.home() / ".cache" / "cry-diffusion")) / f"wheels-{key}"
    if not cache.exists():
        building = cache.with_name(f"{cache.name}.{os.getpid()}")
        proc = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_wheels.sh"), "--local", str(building)],
                              env={**os.environ, "PYTHON": sys.executable}, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        building.rename(cache)
    return cache


@pytest.fixture(scope="module")
def image_python(tmp_path_factory) -> Path:
    """A fresh venv with only the GPU image's packages (those this venv has), linked in, not installed."""
    venv = tmp_path_factory.mktemp("image") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next(venv.glob("lib/python3*/site-packages"))
    image = image_packages()
    for dist in importlib.metadata.distributions():
        if norm(dist.metadata["Name"]) not in image:
            continue
        for top in {Path(str(f)).parts[0] for f in dist.files or []} - {"..", "__pycache__"}:
            source = Path(dist.locate_file(top))
            if source.exists() and not top.endswith(".pth") and not (site / top).exists():
                (site / top).symlink_to(source)
    return venv / "bin" / "python"


def test_the_wheels_carry_nothing_the_image_has(wheels):
    names = {norm(p.name.split("-")[0]) for p in wheels.glob("*.whl")}
    assert {"snakemake", "connection-pool", "diffwave", "soundfile", "librosa"} <= names
    assert not names & image_packages()
    assert sum(p.stat().st_size for p in wheels.glob("*.whl")) < 56 * 2**20


def test_the_check_runs_end_to_end_inside_its_budget(image_python, wheels, tmp_path):
    out, work = tmp_path / "OUT", tmp_path / "work"
    out.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the check finds src/ by itself
    env |= {"TRITON_INTERPRET": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [str(image_python), str(CHECK), "--device", "cpu", "--tiny", "--wheels", str(wheels), "--budget", str(BUDGET),
           "--out", str(out), "--work", str(work), "--cores", "2", "--paper-steps", "10",
           # every part but the default config's run, which the budget would only cut (as the next test shows), and
           # tests/test_fused.py, which this suite runs itself
           "--parts", "training_benchmark", "sampling_benchmark", "paper", "layer_benchmark"]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path)
    wall = time.monotonic() - start
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:] + (out / "check.log").read_text()[-3000:]
    assert wall < BUDGET + 5, wall  # Python's start-up and torch's import come before the check's clock

    # what comes back from a lent machine: at most 8 files, at most 2 folders down, plain names
    files = [p for p in out.rglob("*") if p.is_file()]
    assert 4 <= len(files) <= 7 and all(len(p.relative_to(out).parts) <= 3 for p in files), files
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", p.name) for p in files)
    assert {"summary.json", "training.json", "sampling.json", "progress.png", "progress-mel.png"} <= {p.name for p in files}
    assert "== gpu_check on cpu" in proc.stdout[-4000:] and "training (bf16, compiled" in proc.stdout[-4000:]

    summary = json.loads((out / "summary.json").read_text())
    assert summary["install"]["wheels"] == len(list(wheels.glob("*.whl")))
    site = str(image_python.parent.parent)
    imported = summary["imported_from"]
    assert all(imported[m].startswith(site) for m in ("torch", "numpy", "scipy")), imported  # the image's own
    assert all(imported[m].startswith(str(work / "site")) for m in ("snakemake", "soundfile")), imported
    assert not list(image_python.parent.parent.glob("lib/python3*/site-packages/*gpu_check.pth"))  # removed again

    training = summary["training_benchmark"]
    assert training == json.loads((out / "training.json").read_text())
    assert set(training["steps_per_second"]) == {"reference", "ours", "ours-triton"}
    assert training["compile"] and training["compile_backend"] == "aot_eager" and training["precision"] == "bf16"
    assert training["fused_vs_plain"]["max_abs_diff"] < 1e-4 < training["fused_vs_plain"]["output_scale"]
    sampling = summary["sampling_benchmark"]
    assert sampling["precision"] == "fp16" and [(c["steps"], c["batch"]) for c in sampling["cells"]] == [(6, 1), (6, 2)]

    paper = summary["runs"]["paper"]
    assert paper["returncode"] == 0, paper
    assert paper["command"] == ("snakemake --cores 2 --resources gpu=1 -- results/embedded/figures/progress-waveform.png "
                                "results/embedded/figures/progress-mel-griffin_lim.png")
    stages = {key.split("/")[-1].split("-")[0] for key in paper["stage_seconds"]}
    assert {"ingest", "segment", "train", "embedding", "evaluate", "progress"} <= stages
    devices = {k: v for k, v in paper["devices"].items() if "per second" not in k}
    assert {k.split("/")[-1].split("-")[0] for k in devices} == {"train", "embedding", "evaluate"}
    assert set(devices.values()) == {"cpu"}, devices
    assert paper["devices"]["embedded/train steps per second (median of rows)"] > 0
    for route in ("waveform", "mel-griffin_lim"):  # benchmarks/quality-gpu.yaml cut short: five snapshots of each
        progress = paper["quality"][f"embedded/progress-{route}"]
        assert [r["step"] for r in progress] == [2, 4, 6, 8, 10] and all(r["fad"] >= 0 for r in progress)
        assert {(r["trained_on"], r["sampled_on"]) for r in progress} == {("cpu", "cpu")}
    # the rest had what the budget left: each part done, cut or skipped, and said so
    for later in (summary["fused_tests"], summary["layer_benchmark"], summary["runs"]["default"]):
        problem = later.get("error") or later.get("skipped") or later.get("returncode")  # a benchmark's JSON: none
        assert not problem or "--budget" in str(problem) or "--parts" in str(problem), later
    assert summary["runs"]["default"] == summary["fused_tests"] == {"skipped": "not asked for (--parts)"}


def test_a_budget_skips_what_it_cannot_start(tmp_path):
    proc = subprocess.run([sys.executable, str(CHECK), "--device", "cpu", "--tiny", "--budget", "1",
                           "--out", str(tmp_path / "out"), "--work", str(tmp_path / "work")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    skipped = {"skipped": "out of time (--budget)"}
    assert summary["runs"] == {"paper": skipped, "default": skipped}
    assert summary["training_benchmark"] == summary["sampling_benchmark"] == summary["fused_tests"] == skipped
    assert "paper pipeline: out of time (--budget)" in proc.stdout


def test_a_budget_stops_a_pipeline_and_keeps_what_it_measured(tmp_path, monkeypatch):
    """A pipeline past its limit is stopped with all its jobs, and still reports its finished stages and the
    training rate (from the checkpoints: Snakemake removes the unfinished loss log)."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import gpu_check

    config = gpu_check.merge(yaml.safe_load((REPO / "config.yaml").read_text()), gpu_check.TINY)
    config["device"] = "cpu"
    config["train"] |= {"steps": 1_000_000, "checkpoint_every": 5}  # still training when the limit comes
    # one job at a time, so that the other pytest worker keeps a core: training starts about 10 s in on an idle
    # machine, and 45 s leaves room for a busy one
    run = gpu_check.run_pipeline(tmp_path / "run", config, cores=1, limit=45)
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
