"""Growth: how each cost scales with its size, as the slope of a log-log fit (1 = linear, < 1 = better).

    python benchmarks/growth.py
    python benchmarks/growth.py --only dryrun --files 10 1000 20000

- training-step time against crop length (our DiffWave, paper size, batch 1)
- sampling time against the number of steps (DDIM / fast, batch 1)
- preprocessing time against corpus hours (the pipeline's ingest + segment + mels, all cores)
- `snakemake -n results/report.html` time against the number of input files of a folder dataset
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

import _bench
from cry_diffusion import diffusion


def slope(x, y) -> float:
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def best_of(fn, rounds: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def training(args) -> tuple[list, list]:
    from training import make_step

    model = _bench.our_model(args.layers, args.channels)
    crops = [2000, 4000, 8000, 16000]
    return crops, [best_of(make_step(model, 1, c, torch.device("cpu"), "fp32"), args.rounds) for c in crops]


def sampling(args) -> tuple[list, list]:
    model = _bench.our_model(args.layers, args.channels).eval()
    params = diffusion.DiffusionParams()
    steps = [6, 12, 25, 50]
    return steps, [best_of(lambda s=s: diffusion.sample(model, params, 1, 4000, steps=s), 1) for s in steps]


def preprocessing(args) -> tuple[list, list]:
    import preprocessing as pre

    hours, times = [0.25, 0.5, 1.0], []
    for h in hours:
        scratch = Path(tempfile.mkdtemp(prefix="cry-growth-"))
        try:
            pre.write_corpus(scratch / "corpus", h)
            times.append(pre.ours(scratch / "corpus", scratch, torch.get_num_threads())["total"])
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return hours, times


def dryrun(args) -> tuple[list, list]:
    times = []
    for n in args.files:
        scratch = Path(tempfile.mkdtemp(prefix="cry-dryrun-"))
        try:
            clip = (0.1 * np.random.default_rng(0).standard_normal(4000)).astype(np.float32)
            for k in range(n):
                folder = scratch / "corpus" / f"c{k % 5}"
                folder.mkdir(parents=True, exist_ok=True)
                sf.write(folder / f"{k:05d}.wav", clip, 8000, subtype="PCM_16")
            config = scratch / "config.yaml"
            config.write_text(f"datasets:\n  embedded: {{enabled: false}}\n  growth:\n    kind: folder\n"
                              f"    root: {scratch / 'corpus'}\n    category: {{from: folder}}\n")
            cmd = [sys.executable, "-m", "snakemake", "-n", "--quiet", "all", "--cores", "1",
                   "--snakefile", str(_bench.ROOT / "Snakefile"), "--directory", str(scratch),
                   "--configfile", str(_bench.ROOT / "config.yaml"), str(config), "--", "results/report.html"]
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, cwd=scratch)
            times.append(time.perf_counter() - t0)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return args.files, times


STUDIES = {"training": ("crop samples", "s per training step", training),
           "sampling": ("sampling steps", "s per sample", sampling),
           "preprocessing": ("corpus hours", "s", preprocessing),
           "dryrun": ("input files", "s for snakemake -n", dryrun)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", choices=list(STUDIES), default=list(STUDIES))
    ap.add_argument("--layers", type=int, default=30)
    ap.add_argument("--channels", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--files", type=int, nargs="+", default=[10, 1000, 20000])
    args = ap.parse_args()
    print(f"machine: {_bench.machine(torch.device('cpu'))}\n")
    rows = []
    for name in args.only:
        xlabel, ylabel, study = STUDIES[name]
        x, y = study(args)
        print(f"{name}: " + ", ".join(f"{a:g} {xlabel} -> {b:.3g} {ylabel}" for a, b in zip(x, y)), flush=True)
        rows.append([name, xlabel, f"{x[0]:g}-{x[-1]:g}", slope(x, y), "yes" if slope(x, y) <= 1.1 else "NO"])
    print()
    print(_bench.table(rows, ["cost", "against", "range", "log-log slope", "linear or better"]))


if __name__ == "__main__":
    main()
