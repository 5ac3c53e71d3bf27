"""The GPU check: one command that fits one call to a GPU machine and comes back with its numbers.

    benchmarks/gpu_wheels.sh                                    # here, once (needs PyPI): .whl/, about 42 MiB
    python3 benchmarks/gpu_check.py --wheels .whl --budget 540 --out "$OUT"     # there (carry .whl)
    python benchmarks/gpu_check.py --device cpu --tiny --budget 300 --out /tmp/o   # a CPU rehearsal of all of it

Everything runs under --work (/tmp); at most seven small files land in --out, each as soon as it
has numbers: summary.json (rewritten after every part), training.json, sampling.json,
kernels.json, progress.png and progress-mel.png (quality against training minutes of the waveform
model and of the mel prior) and check.log (the benchmarks' tables). The last lines printed are a compact summary of all of it. The parts, most telling first:

0. --wheels DIR: the packages the machine lacks, installed from the folder gpu_wheels.sh made,
   with pip --no-index into --work/site, which a .pth file puts AFTER the machine's own
   site-packages (its numpy, scipy and torch stay the ones imported; the file goes at the end).
1. Training throughput (benchmarks/training.py): our model with PyTorch layers and with the
   fused Triton layers, bf16 and torch.compile, against lmnt-com/diffwave 0.1.7 in the same
   process with the same TF32 setting; FLOPs counted hook-free; a check that fused and plain
   layers agree; training.json is written before the memory probes, which may run out of time.
2. Sampling per (steps, batch) cell (benchmarks/sampling.py): warm, each step a CUDA graph
   recorded once per batch shape and replayed; sampling.json grows cell by cell.
3. The paper-size pipeline (benchmarks/quality-gpu.yaml: waveform DiffWave 30 x 64, batch 16,
   1-s crops, beside the mel route's prior and Griffin-Lim) cut to --paper-steps with five
   snapshots each, as far as the progress rule's figures: steps per second inside the pipeline,
   and FAD and the band checks against training minutes, route by route.
4. tests/test_fused.py on this machine, 5. one fused layer timed (benchmarks/kernels.py),
   6. the user's own command on the default config: whatever the budget still allows.

--budget counts from the start, install included: each part gets at most what is left less
the time to stop it (a pipeline still running then is stopped with its whole process group and
reports the stages it finished), and parts not begun are listed as skipped.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
# our own code, for this process and every one it starts (benchmarks, tests, Snakemake): no install needed
sys.path.insert(0, str(SRC))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))

# The paper-size run: benchmarks/quality-gpu.yaml, shortened by --paper-steps
PAPER = yaml.safe_load((ROOT / "benchmarks" / "quality-gpu.yaml").read_text())
# --tiny: both runs shrunk so that the whole check takes a minute or two on a CPU
TINY = {
    "generators": ["waveform", "mel"],
    "vocoder": {"kinds": ["griffin_lim"]},
    "embedded_corpus": {"clips_per_category": 2, "seconds": [1.5, 2.5]},
    "datasets": {"embedded": {"segment_seconds": 1}},
    "model": {"residual_layers": 2, "residual_channels": 8},
    "train": {"steps": 20, "batch_size": 2, "crop_seconds": 0.25, "checkpoint_every": 10, "log_every": 5},
    "mel_prior": {"model": {"residual_layers": 2, "residual_channels": 16},
                  "train": {"steps": 20, "batch_size": 2, "checkpoint_every": 10, "log_every": 5}},
    # DiffWave's fast schedule only: the snapshots are sampled at the largest count, and on a CPU ten 200-step chains
    # took most of the paper run's minutes
    "sampling": {"steps": [6], "n_samples": 2, "seconds": 0.25},
    "evaluation": {"bootstrap": 20, "embedding": {"epochs": 2}},
    # the study and the utility stage's second training add nothing a GPU changes: a tiny default run ends sooner
    "listening": {"enabled": False},
    "utility": {"enabled": False},
}
PARTS = ("training_benchmark", "sampling_benchmark", "paper", "fused_tests", "layer_benchmark", "default")  # in order
RESERVE = 30  # seconds kept back from each part: a pipeline's stop (20 s grace) and the files' copy
PTH = "cry_diffusion_gpu_check.pth"
OUT_FILES = ("summary.json", "training.json", "sampling.json", "kernels.json", "progress.png", "progress-mel.png",
             "check.log")
# the progress figure of each route the paper-size run draws, and the name it comes back under
FIGURES = {"waveform": "progress.png", "mel-griffin_lim": "progress-mel.png"}


def merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = merge(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


def run_pipeline(workdir: Path, config: dict, cores: int, limit: float | None = None,
                 target: str | list[str] = "results/report.html") -> dict:
    """The user's command in `workdir` with `config` as its config.yaml -> wall time, stages, devices.

    Stopped after `limit` seconds with its whole process group (Snakemake's jobs are its children, and a
    job left running would hold the GPU); the stages it finished are still reported."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--cores", str(cores), "--resources", "gpu=1", "--", *([target] if isinstance(target, str) else target)]
    start = time.perf_counter()
    returncode = run_stoppable(cmd, workdir / "snakemake.log", limit, grace=20)
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


def run_stoppable(cmd: list[str], log: Path, limit: float | None, grace: float = 5, cwd=None) -> int | None:
    """cmd with its output appended to `log` -> its exit status, or None if it ran past `limit` and was stopped."""
    with open(log, "a") as out:
        out.write(f"\n== {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True)
        try:
            return proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            stop(proc, grace)
            return None
        except BaseException:  # Ctrl-C or main's SIGTERM: its own session no longer hears them, so stop it here
            stop(proc, grace)
            raise


def stop(proc: subprocess.Popen, grace: float = 20) -> None:
    """SIGTERM to the process group (training checkpoints and exits on it), then SIGKILL to whatever of it
    is left once the process has exited or `grace` seconds have passed."""
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
    """Per route: FAD and the band checks against training minutes (the progress rule), and the fastest step count no worse than its full chain."""
    out = {}
    for ds in sorted(results.glob("*/evaluation/progress-*.json")):  # only what exists: a stopped run has less
        rows = json.loads(ds.read_text())["rows"]
        out[f"{ds.parent.parent.name}/{ds.stem}"] = [
            {"step": r["step"], "minutes": r["minutes"], "fad": r["fad"]["value"], "inside": r["inside"],
             "trained_on": r["trained_on"], "sampled_on": r["sampled_on"]} for r in rows]
    for ds in sorted(results.glob("*/evaluation/tradeoff-*.json")):
        out[f"{ds.parent.parent.name}/{ds.stem.removeprefix('tradeoff-')}/fastest_no_worse"] = json.loads(ds.read_text())["fastest_no_worse"]
    return {"quality": out}


def stages(results: Path) -> dict:
    """Each job's wall time from Snakemake's benchmark files, and the device each torch stage recorded."""
    import torch

    from cry_diffusion import checkpoint
    from cry_diffusion.loop import CSV_COLUMNS

    seconds = {}
    for tsv in sorted((results / "benchmarks").rglob("*.tsv")):
        with open(tsv, newline="") as f:
            row = next(csv.DictReader(f, delimiter="\t"))
        seconds[str(tsv.relative_to(results / "benchmarks").with_suffix(""))] = float(row["s"])
    devices = {}
    # a run stopped by --budget may have no model, embedding or loss log yet (Snakemake removes the unfinished
    # outputs), but its training checkpoints keep the loss log's rows: report what is there
    trained = {p.parent for p in results.glob("*/loss.csv")} | {p.parent for p in results.glob("*/checkpoints")} | {
        p.parent for p in results.glob("*/mel_prior/loss.csv")} | {p.parent for p in results.glob("*/mel_prior/checkpoints")}
    for ds in sorted(trained):
        name = ds.relative_to(results)  # embedded, or embedded/mel_prior
        if (ds / "model.pt").exists():
            model = torch.load(ds / "model.pt", map_location="cpu", weights_only=True)
            devices[f"{name}/train"] = model.get("device")
        for info in sorted(ds.glob("samples/*-steps-*/info.json")):
            devices[f"{name}/sample-{info.parent.name}"] = json.loads(info.read_text()).get("device")
        if (ds / "embedding.json").exists():
            devices[f"{name}/embedding"] = json.loads((ds / "embedding.json").read_text()).get("device")
        for ev in sorted(ds.glob("evaluation/*.json")):
            if not ev.stem.startswith(("tradeoff", "progress")):  # scores without a device of their own
                devices[f"{name}/evaluate-{ev.stem}"] = json.loads(ev.read_text()).get("device")
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
            devices[f"{name}/train steps per second (median of rows)"] = sorted(rates)[len(rates) // 2]
    return {"stage_seconds": seconds, "devices": devices}


def install(wheels: Path, site: Path, log: Path) -> dict:
    """The wheels gpu_wheels.sh made, into `site`, on every Python's path here after the machine's own packages."""
    found = sorted(wheels.glob("*.whl"))
    if not found:
        raise SystemExit(f"--wheels {wheels}: no .whl files there (benchmarks/gpu_wheels.sh makes them)")
    start = time.perf_counter()
    # --no-deps: the folder is the whole closure; the image's packages are deliberately not in it
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
           "--disable-pip-version-check", "--target", str(site), *map(str, found)]
    if run_stoppable(cmd, log, None):
        raise SystemExit(f"installing {wheels}/*.whl failed: see {log}")
    sys.path.append(str(site))
    pth = Path(sysconfig.get_paths()["purelib"]) / PTH
    try:  # a .pth line appends to sys.path after site-packages, in every Python started from now on
        pth.write_text(f"{site}\n")
        how = f"appended to the path by {pth}"
    except OSError:  # site-packages not ours to write: the path variable then, which comes first
        os.environ["PYTHONPATH"] += os.pathsep + str(site)
        how = "on PYTHONPATH (site-packages is read-only here)"
    return {"wheels": len(found), "seconds": time.perf_counter() - start, "target": f"{site}, {how}"}


def uninstall_pth() -> None:
    Path(sysconfig.get_paths()["purelib"], PTH).unlink(missing_ok=True)


def run_fused_tests(log: Path, limit: float | None) -> dict:
    """tests/test_fused.py on this machine: the kernels against the plain layer (bf16 too, on a GPU).

    Not the test that compiles for an H100 without one: a CPU does that, and here it is a minute of GPU time.
    """
    try:
        import pytest  # noqa: F401
    except ImportError:
        return {"skipped": "pytest is not installed"}
    # -o addopts=: one process, without pyproject's pytest-xdist workers
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-o", "addopts=",
           "-k", "not compile_for", str(ROOT / "tests" / "test_fused.py")]
    start = log.stat().st_size if log.exists() else 0
    returncode = run_stoppable(cmd, log, limit, cwd=ROOT)
    tail = log.read_text()[start:][-600:]
    if returncode is None:
        return {"returncode": None, "error": f"stopped after {limit:.0f} s (--budget)", "tail": tail}
    return {"returncode": returncode, "tail": tail}


def run_benchmark(script: str, args: list[str], out: Path, log: Path, limit: float | None) -> dict:
    """benchmarks/<script>.py writing <out>/<script>.json itself, as its figures come; what it wrote, or why none."""
    try:
        import diffwave  # noqa: F401
    except ImportError:
        if script != "kernels":
            return {"skipped": "the reference is not installed: diffwave==0.1.7 (benchmarks/gpu_wheels.sh)"}
    target = out / f"{script}.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / f"{script}.py"), *args, "--json", str(target)]
    returncode = run_stoppable(cmd, log, limit, cwd=ROOT / "benchmarks")
    result = json.loads(target.read_text()) if target.exists() else {}
    if returncode is None:
        result["error"] = f"stopped after {limit:.0f} s (--budget)"
    elif returncode:
        result |= {"returncode": returncode, "error": log.read_text()[-1500:]}
    return result


def digest(summary: dict, budget: float | None, wall: float) -> str:
    """The last lines printed: what a reader of the output's tail needs, in a few hundred bytes."""
    lines = [f"== gpu_check on {summary['gpu'] or summary['device']}, torch {summary['torch']}: {wall:.0f} s"
             + (f" of a {budget:.0f} s budget" if budget else "")]
    if inst := summary.get("install"):
        lines.append(f"install: {inst.get('wheels')} wheels in {inst.get('seconds', 0):.0f} s")
    tb = summary.get("training_benchmark", {})
    if rates := tb.get("steps_per_second"):
        compiled = f", compiled ({tb.get('compile_backend')})" if tb.get("compile") else ""
        lines.append(f"training ({tb.get('precision')}{compiled}, tf32 {tb.get('tf32')}, "
                     f"batch {tb.get('batch')} x {tb.get('samples')}): " + ", ".join(
                         f"{n} {r:.3g} steps/s ({100 * tb['fraction_of_peak'][n]:.0f}% of peak)" for n, r in rates.items())
                     + "; speed-up " + ", ".join(f"{n} {v:.2f}x" for n, v in tb.get("speedup", {}).items()))
        if fused := tb.get("fused_vs_plain"):
            lines.append(f"fused vs plain layers: max abs diff {fused['max_abs_diff']:.3g} of {fused['output_scale']:.3g}")
    sb = summary.get("sampling_benchmark", {})
    if cells := sb.get("cells"):
        lines.append(f"sampling audio s/s, ours/reference ({sb.get('precision')}, graphs {sb.get('graph')}): " + "; ".join(
            f"{c['steps']} steps b{c['batch']} {c['ours']:.3g}/{c['reference']:.3g}" for c in cells))
    for name, run in summary["runs"].items():
        if "skipped" in run:
            lines.append(f"{name} pipeline: {run['skipped']}")
            continue
        rate = {k: v for k, v in run.get("devices", {}).items() if "per second" in k}
        curves = {k.split("/progress-")[-1]: v for k, v in run.get("quality", {}).items() if "/progress-" in k}
        state = "ok" if run.get("returncode") == 0 else run.get("error", "")[:80].replace("\n", " ")
        lines.append(f"{name} pipeline: {state}, {run.get('wall_seconds', 0):.0f} s; train {list(rate.values())} "
                     "steps/s; FAD by step " + "; ".join(f"{route} " + ", ".join(f"{r['step']}: {r['fad']:.3g}" for r in curve)
                                                          for route, curve in curves.items()))
    for key in ("fused_tests", "layer_benchmark"):
        part = summary.get(key, {})
        state = part.get("skipped") or part.get("error") or ("returncode %s" % part.get("returncode")
                                                              if "returncode" in part else "ok")
        if key == "fused_tests" and "tail" in part:
            state += ": " + part["tail"].strip().splitlines()[-1][:100] if part["tail"].strip() else ""
        lines.append(f"{key.replace('_', ' ')}: {str(state)[:160]}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda", help="cuda (the check) or cpu (a rehearsal of it)")
    ap.add_argument("--out", default=str(ROOT / "results" / "gpu_check"), type=Path,
                    help="where the six files go ($OUT on a lent machine)")
    ap.add_argument("--work", default="/tmp/cry-diffusion-gpu-check", type=Path,
                    help="everything else: pipelines, checkpoints, installed wheels (emptied first)")
    ap.add_argument("--wheels", type=Path, help="a folder of wheels to install first (benchmarks/gpu_wheels.sh)")
    ap.add_argument("--cores", type=int, default=min(8, os.cpu_count() or 1))
    ap.add_argument("--paper-steps", type=int, default=3000, help="training steps of the paper-size run")
    ap.add_argument("--tiny", action="store_true", help="tiny models and data throughout (for a CPU)")
    ap.add_argument("--layer-kernel", choices=("torch", "triton"), default="torch",
                    help="train.layer_kernel of the paper-size run (the default config's is config.yaml's)")
    ap.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS),
                    help="the parts to run, e.g. one that failed again; the others are skipped, and said so")
    ap.add_argument("--budget", type=float, default=None,
                    help="seconds for the whole check, install included: each part gets at most what is left")
    args = ap.parse_args()
    started = time.monotonic()
    deadline = started + args.budget if args.budget is not None else float("inf")
    # an outer timeout's SIGTERM becomes an exception, so that a part under way is stopped with it
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("no GPU visible to torch: run with --device cpu --tiny to rehearse the check on a CPU")
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in OUT_FILES:  # only what an earlier check left: --out may hold other things
        (args.out / name).unlink(missing_ok=True)
    log = args.out / "check.log"
    summary = {"device": args.device, "torch": torch.__version__,
               "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None, "runs": {}}

    def save():  # after every part: a check cut short still leaves what it measured
        summary["seconds"] = time.monotonic() - started
        tmp = args.out / "summary.json.tmp"
        tmp.write_text(json.dumps(summary, indent=1))
        tmp.replace(args.out / "summary.json")

    def part(where: dict, key: str, run, own: float | None = None) -> dict:
        """One part, given its own time limit or what is left of --budget (less RESERVE) if that is less; skipped,
        and said so, with under 20 s left; saved as soon as it ends."""
        left = deadline - time.monotonic() - RESERVE
        limit = min(own or left, left)
        print(f"== {key}", flush=True)
        if key not in args.parts:
            where[key] = {"skipped": "not asked for (--parts)"}
            save()
            return where[key]
        began = time.monotonic()
        where[key] = run(None if limit == float("inf") else limit) if limit >= 20 else {"skipped": "out of time (--budget)"}
        summary.setdefault("part_seconds", {})[key] = round(time.monotonic() - began, 1)  # where a budget went
        save()
        return where[key]

    try:
        if args.wheels:
            summary["install"] = install(args.wheels, args.work / "site", log)
        # which copy of each is imported: the machine's own numpy and torch, ours from the wheels or an install
        summary["imported_from"] = {name: getattr(importlib.util.find_spec(name), "origin", None)
                                    for name in ("torch", "numpy", "scipy", "triton", "snakemake", "soundfile")}
        save()
        base = yaml.safe_load((ROOT / "config.yaml").read_text())
        # The default config says device: auto; a CPU rehearsal on a GPU machine names the CPU.
        base["device"] = "auto" if args.device.startswith("cuda") else args.device
        short = {"steps": args.paper_steps, "snapshot_every": max(1, args.paper_steps // 5),
                 "checkpoint_every": max(1, args.paper_steps // 5)}
        prior = {"mel_prior": {"train": short}}  # the mel prior trained as many steps, with as many snapshots
        short |= {"layer_kernel": args.layer_kernel}
        paper = merge(merge(base, TINY | {"train": TINY["train"] | short}), prior) if args.tiny \
            else merge(base, merge(merge(PAPER, {"train": short}), prior))

        # the same code paths on a CPU, tiny: compile, the fused kernels (under TRITON_INTERPRET=1), bf16 and fp16
        small = ["--layers", "2", "--channels", "16"] if args.tiny else []
        training = ["--device", args.device, "--precision", "bf16", "--compile", "--layer-kernel", "both"] + small + (
            # compiled without inductor's code generation: on a CPU it builds C++ (36 of the benchmark's 49 CPU-seconds),
            # which no GPU runs; dynamo's capture and AOT autograd, what a GPU run shares, still run
            ["--batch", "1", "--samples", "1000", "--rounds", "1", "--probe-timeout", "0", "--compile-backend", "aot_eager"]
            if args.tiny
            else ["--batch", "16", "--rounds", "3", "--repeat", "10", "--probe-timeout", "60"])
        sampling = ["--device", args.device] + small + (
            ["--seconds", "0.05", "--steps", "6", "--batches", "1", "2", "--precision", "fp16"] if args.tiny
            else ["--seconds", "1", "--all", "--precision", "bf16", "--rounds", "2"])
        part(summary, "training_benchmark", lambda limit: run_benchmark("training", training, args.out, log, limit), 240)
        part(summary, "sampling_benchmark", lambda limit: run_benchmark("sampling", sampling, args.out, log, limit), 150)
        # only as far as each route's quality-against-training-time curve: the report's other evaluations wait for part 6
        figures = {Path("results", "embedded", "figures", f"progress-{route}.png"): name for route, name in FIGURES.items()}
        part(summary["runs"], "paper", lambda limit: run_pipeline(args.work / "paper", paper, args.cores, limit,
                                                                  [str(f) for f in figures]))
        for figure, name in figures.items():
            if (args.work / "paper" / figure).exists():
                shutil.copyfile(args.work / "paper" / figure, args.out / name)
        part(summary, "fused_tests", lambda limit: run_fused_tests(log, limit), 150)
        part(summary, "layer_benchmark", lambda limit: run_benchmark(
            "kernels", ["--time", "--device", args.device, "--rounds", "5"]
            + (["--channels", "16", "--batch", "1", "--samples", "256", "--repeat", "1"] if args.tiny else []),
            args.out, log, limit), 60)
        default = merge(base, TINY) if args.tiny else base
        part(summary["runs"], "default", lambda limit: run_pipeline(args.work / "default", default, args.cores, limit))
    finally:
        if args.wheels:
            uninstall_pth()
    save()
    print(digest(summary, args.budget, time.monotonic() - started))
    failed = [name for name, run in summary["runs"].items() if run.get("returncode")]
    print(f"files in {args.out}: {', '.join(sorted(p.name for p in args.out.iterdir()))}"
          + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
