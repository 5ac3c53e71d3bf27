"""The GPU check: what a user with one GPU runs first, in at most 8 minutes on an H100.

    python benchmarks/gpu_check.py                      # on a GPU machine, from the repo root
    python benchmarks/gpu_check.py --budget 540         # the same, stopping in time (a lent machine's 10-minute call)
    python benchmarks/gpu_check.py --device cpu --tiny  # the same steps, tiny, on a CPU (tests/test_gpu_check.py)

1. tests/test_fused.py, where pytest is installed: the fused Triton layers against the plain
   ones, compiled for this GPU, in float32 and bf16; then one layer timed, plain against
   fused (benchmarks/kernels.py --time).
2. benchmarks/training.py and benchmarks/sampling.py against lmnt-com/diffwave 0.1.7 in
   the same process (skipped, and said so, when `diffwave` is not installed); training with
   our residual layers both as PyTorch ops and as the fused Triton kernels (train.layer_kernel),
   and again without the kernels if that fails. These come first: they take a minute or two.
3. The user's command, `snakemake --cores 8 --resources gpu=1 -- results/report.html`,
   on the default config (in --out/default, so the repo's results/ stay as they are).
4. The same on benchmarks/quality-gpu.yaml (the paper's 30 x 64 model, batch 16, 1-s crops)
   cut to --paper-steps steps with five snapshots, in --out/paper: training steps per second
   inside the pipeline, and quality against training minutes (the progress rule). The full
   10,000-step curve is `snakemake results/report.html --configfile benchmarks/quality-gpu.yaml`.
5. For each run: every stage's wall time (Snakemake's benchmark files) and the device
   that train, sample, embedding and evaluate recorded.
Everything lands in --out/summary.json, written again after each part. With --budget, each part
runs for at most what is left of it: a pipeline still running then is stopped (its whole process
group) and reports the stages it finished, and parts not begun are listed as skipped.

A GPU machine that has torch but no package registry: fetch the other packages as
wheels on a machine that has one, carry the folder along, and install them there:

    # here (Python 3.12 on the GPU machine: match its version and platform)
    pip download --only-binary=:all: --python-version 3.12 --implementation cp \\
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \\
        -d .whl snakemake soundfile soxr av librosa jsonschema jinja2 pyyaml scikit-learn \\
        pytest pytest-xdist   # and their needs
    pip download --no-deps -d .whl diffwave==0.1.7 resemblyzer==0.1.4   # its weight file only: never imported
    # there
    python3 -m pip install --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD/src
    python3 benchmarks/gpu_check.py

(`pip download` without --no-deps fetches each package's needs too; leave out torch, numpy,
scipy, pandas and matplotlib if the machine has them, and keep one version of each.)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

# The paper-size run: benchmarks/quality-gpu.yaml, shortened by --paper-steps
PAPER = yaml.safe_load((ROOT / "benchmarks" / "quality-gpu.yaml").read_text())
# --tiny: both runs shrunk so that the whole check takes a minute or two on a CPU
TINY = {
    "embedded_corpus": {"clips_per_category": 2, "seconds": [1.5, 2.5]},
    "datasets": {"embedded": {"segment_seconds": 1}},
    "model": {"residual_layers": 2, "residual_channels": 8},
    "train": {"steps": 20, "batch_size": 2, "crop_seconds": 0.25, "checkpoint_every": 10, "log_every": 5},
    "sampling": {"steps": [200, 6], "n_samples": 2, "seconds": 0.25},
    "evaluation": {"bootstrap": 20, "embedding": {"epochs": 2}},
}


def merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = merge(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


def run_pipeline(workdir: Path, config: dict, cores: int, limit: float | None = None) -> dict:
    """The user's command in `workdir` with `config` as its config.yaml -> wall time, stages, devices.

    Stopped after `limit` seconds with its whole process group (Snakemake's jobs are its children, and a
    job left running would hold the GPU); the stages it finished are still reported."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--cores", str(cores), "--resources", "gpu=1", "--", "results/report.html"]
    start = time.perf_counter()
    with open(workdir / "snakemake.log", "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            returncode = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            returncode = None
            stop(proc)
        except BaseException:  # Ctrl-C or main's SIGTERM: its own session no longer hears them, so stop it here
            stop(proc)
            raise
    wall = time.perf_counter() - start
    result = {"command": " ".join(["snakemake", *cmd[7:]]), "returncode": returncode, "wall_seconds": wall}
    if returncode is None:
        result["error"] = f"stopped after {limit:.0f} s (--budget)"
    elif returncode:
        result["error"] = (workdir / "snakemake.log").read_text()[-3000:]
    try:  # a failed or stopped run may have left a file half-written: say so, and go on to the next part
        return result | stages(workdir / "results") | quality(workdir / "results")
    except Exception as e:
        return result | {"results_error": f"{type(e).__name__}: {e}"}


def stop(proc: subprocess.Popen, grace: float = 20) -> None:
    """SIGTERM to the process group (training checkpoints and exits on it), then SIGKILL to whatever of it
    is left once Snakemake has exited or `grace` seconds have passed."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:  # Snakemake waits for its jobs on SIGTERM, but a process a job started may outlive it
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def quality(results: Path) -> dict:
    """FAD against training minutes (the progress rule), and the fastest step count no worse than 200."""
    out = {}
    for ds in sorted(results.glob("*/evaluation/progress.json")):  # only what exists: a stopped run has less
        rows = json.loads(ds.read_text())["rows"]
        out[f"{ds.parent.parent.name}/progress"] = [
            {"step": r["step"], "minutes": r["minutes"], "fad": r["fad"]["value"], "inside": r["inside"],
             "trained_on": r["trained_on"], "sampled_on": r["sampled_on"]} for r in rows]
    for ds in sorted(results.glob("*/evaluation/tradeoff.json")):
        out[f"{ds.parent.parent.name}/fastest_no_worse"] = json.loads(ds.read_text())["fastest_no_worse"]
    return {"quality": out}


def stages(results: Path) -> dict:
    """Each job's wall time from Snakemake's benchmark files, and the device each torch stage recorded."""
    import torch

    from cry_diffusion import checkpoint
    from cry_diffusion.train import CSV_COLUMNS

    seconds = {}
    for tsv in sorted((results / "benchmarks").rglob("*.tsv")):
        with open(tsv, newline="") as f:
            row = next(csv.DictReader(f, delimiter="\t"))
        seconds[str(tsv.relative_to(results / "benchmarks").with_suffix(""))] = float(row["s"])
    devices = {}
    # a run stopped by --budget may have no model, embedding or loss log yet (Snakemake removes the unfinished
    # outputs), but its training checkpoints keep the loss log's rows: report what is there
    trained = {p.parent for p in results.glob("*/loss.csv")} | {p.parent for p in results.glob("*/checkpoints")}
    for ds in sorted(trained):
        if (ds / "model.pt").exists():
            model = torch.load(ds / "model.pt", map_location="cpu", weights_only=True)
            devices[f"{ds.name}/train"] = model.get("device")
        for info in sorted(ds.glob("samples/steps-*/info.json")):
            devices[f"{ds.name}/sample-{info.parent.name[6:]}"] = json.loads(info.read_text()).get("device")
        if (ds / "embedding.json").exists():
            devices[f"{ds.name}/embedding"] = json.loads((ds / "embedding.json").read_text()).get("device")
        for ev in sorted(ds.glob("evaluation/*.json")):
            if ev.stem not in ("tradeoff", "progress"):  # scores without a device of their own
                devices[f"{ds.name}/evaluate-{ev.stem}"] = json.loads(ev.read_text()).get("device")
        if (ds / "loss.csv").exists():
            with open(ds / "loss.csv", newline="") as f:
                rows = [r["steps_per_second"] for r in csv.DictReader(f)]
        elif found := sorted((c for run in (ds / "checkpoints").glob("*/") for c in checkpoint.checkpoints(run)),
                             key=lambda c: c.stat().st_mtime):  # one folder per run key
            rate = CSV_COLUMNS.index("steps_per_second")
            rows = [r[rate] for r in torch.load(found[-1], map_location="cpu", weights_only=True)["loss_history"]]
        else:
            rows = []
        rates = [float(r) for r in rows[1:]] or [float(r) for r in rows]  # the first row holds start-up
        if rates:
            devices[f"{ds.name}/train steps per second (median of rows)"] = sorted(rates)[len(rates) // 2]
    return {"stage_seconds": seconds, "devices": devices}


def run_fused_tests(limit: int = 240) -> dict:
    """tests/test_fused.py on this machine: the kernels against the plain layer (bf16 too, on a GPU).

    Not the test that compiles for an H100 without one: a CPU does that, and here it is a minute of GPU time.
    """
    try:
        import pytest  # noqa: F401
    except ImportError:
        return {"skipped": "pytest is not installed"}
    # -o addopts=: one process, without pyproject's pytest-xdist workers (and without xdist installed)
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-o", "addopts=",
           "-k", "not compile_for", str(ROOT / "tests" / "test_fused.py")]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=limit)
    except subprocess.TimeoutExpired as e:
        return {"returncode": None, "error": f"stopped after {limit:.0f} s", "tail": str(e.stdout or "")[-1500:]}
    print(proc.stdout[-1500:])
    return {"returncode": proc.returncode, "tail": (proc.stdout + proc.stderr)[-1500:]}


def run_benchmark(script: str, args: list[str], out: Path, limit: int = 300, reference: bool = True) -> dict:
    try:
        if reference:
            import diffwave  # noqa: F401
    except ImportError:
        return {"skipped": "the reference is not installed: pip install --no-deps diffwave==0.1.7"}
    target = out / f"{script}.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / f"{script}.py"), *args, "--json", str(target)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT / "benchmarks", timeout=limit)
    except subprocess.TimeoutExpired as e:
        (out / f"{script}.txt").write_text(str(e.stdout or ""))
        return {"returncode": None, "error": f"stopped after {limit:.0f} s"}
    (out / f"{script}.txt").write_text(proc.stdout + proc.stderr)
    print(proc.stdout)
    if proc.returncode:
        return {"returncode": proc.returncode, "error": proc.stderr[-2000:]}
    return json.loads(target.read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda", help="cuda (the check) or cpu (a rehearsal of it)")
    ap.add_argument("--out", default=str(ROOT / "results" / "gpu_check"), type=Path)
    ap.add_argument("--cores", type=int, default=min(8, os.cpu_count() or 1))
    ap.add_argument("--paper-steps", type=int, default=3000, help="training steps of the paper-size run")
    ap.add_argument("--tiny", action="store_true", help="tiny models and data throughout (for a CPU)")
    ap.add_argument("--layer-kernel", choices=("torch", "triton"), default="torch",
                    help="train.layer_kernel of the paper-size run (the default config's is config.yaml's)")
    ap.add_argument("--budget", type=float, default=None,
                    help="seconds for the whole check: each part gets at most what is left, and is skipped below 20 s")
    args = ap.parse_args()
    deadline = time.monotonic() + args.budget if args.budget is not None else float("inf")
    # an outer timeout's SIGTERM becomes an exception, so that a pipeline under way is stopped with it
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("no GPU visible to torch: run with --device cpu --tiny to rehearse the check on a CPU")
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    base = yaml.safe_load((ROOT / "config.yaml").read_text())
    # The default config says device: auto; a CPU rehearsal on a GPU machine names the CPU.
    base["device"] = "auto" if args.device.startswith("cuda") else args.device
    default = merge(base, TINY) if args.tiny else base
    short = {"steps": args.paper_steps, "snapshot_every": max(1, args.paper_steps // 5),
             "checkpoint_every": max(1, args.paper_steps // 5), "layer_kernel": args.layer_kernel}
    paper = merge(base, TINY | {"train": TINY["train"] | short}) if args.tiny \
        else merge(base, merge(PAPER, {"train": short}))

    summary = {"device": args.device, "torch": torch.__version__,
               "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None, "runs": {}}

    def save():  # after every part: a check cut short by its time limit still leaves what it measured
        (args.out / "summary.json").write_text(json.dumps(summary, indent=1))

    def part(where: dict, key: str, run, own: float | None = None) -> dict:
        """One part of the check, given its own time limit or what is left of --budget if that is less (and
        skipped, and said so, with under 20 s left); saved as soon as it ends."""
        left = deadline - time.monotonic()
        limit = min(own or left, left)
        skipped = {"skipped": "out of time (--budget)"}
        where[key] = run(None if limit == float("inf") else limit) if left >= 20 else skipped
        save()
        return where[key]

    # The benchmarks first: a minute or two, and the figures the pipeline runs can't give
    small = ["--layers", "2", "--channels", "8"] if args.tiny else []
    training = ["--device", args.device, "--rounds", "3"] + small + (
        ["--batch", "2", "--samples", "2000"] if args.tiny else ["--batch", "16", "--precision", "bf16", "--compile"])
    fused_error = None
    if not args.tiny:  # the fused kernels need 16 channels or more (and a GPU, or the interpreter)
        part(summary, "fused_tests", run_fused_tests, 240)
        part(summary, "layer_benchmark", lambda limit: run_benchmark(
            "kernels", ["--time", "--device", args.device, "--rounds", "10"], args.out, limit, reference=False), 120)
        bench = part(summary, "training_benchmark", lambda limit: run_benchmark(
            "training", training + ["--layer-kernel", "both", "--repeat", "10"], args.out, limit), 300)
        fused_error = bench if bench.get("returncode") else None  # failed, not cut short by --budget
    if args.tiny or fused_error:  # without the kernels, the rest is still measured
        part(summary, "training_benchmark", lambda limit: run_benchmark("training", training, args.out, limit), 300)
        if fused_error:
            summary["training_benchmark"]["fused_error"] = fused_error
            save()
    part(summary, "sampling_benchmark", lambda limit: run_benchmark(
        "sampling", ["--device", args.device] + small
        + (["--seconds", "0.05", "--steps", "6", "--batches", "1"] if args.tiny
           else ["--seconds", "1", "--all", "--precision", "bf16"]), args.out, limit), 300)
    for name, config in (("default", default), ("paper", paper)):
        print(f"== pipeline: {name} config", flush=True)
        part(summary["runs"], name, lambda limit, name=name, config=config:
             run_pipeline(args.out / name, config, args.cores, limit))
        print(json.dumps(summary["runs"][name], indent=1), flush=True)
    failed = [name for name, run in summary["runs"].items() if run.get("returncode")]
    cut = [name for name, run in summary["runs"].items() if run.get("returncode", None) is None]  # not failures
    print(f"summary: {args.out / 'summary.json'}" + (f"; FAILED: {', '.join(failed)}" if failed else "")
          + (f"; cut short by --budget: {', '.join(cut)}" if cut else ""))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
