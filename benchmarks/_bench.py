"""Shared parts of the benchmarks: the reference DiffWave, alternating timers, FLOP counts, peak memory.

Not a benchmark itself; the scripts beside it are. Timings on a shared machine swing
by several times between minutes, so every comparison here alternates the contenders
in one process and reports the median of per-round ratios, never two separate runs.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}  # autocast dtype per --precision


def common_args(description: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: all cores)")
    ap.add_argument("--layers", type=int, default=30, help="residual layers (the paper: 30)")
    ap.add_argument("--channels", type=int, default=64, help="residual channels (the paper: 64)")
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds per contender, after one warm-up")
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"),
                    help="autocast dtype for our model (the reference always runs float32, as lmnt ships it)")
    ap.add_argument("--json", help="also write the figures to this JSON file (benchmarks/gpu_check.py reads them)")
    ap.add_argument("--tf32", choices=("on", "off"), default="on",
                    help="CUDA: float32 matmuls and convolutions in TF32 for every contender alike (on: as the pipeline "
                         "runs, cry_diffusion.runtime.prepare; off: strict float32)")
    ap.add_argument("--glibc-default", action="store_true",
                    help="leave malloc as glibc sets it (the pipeline keeps big blocks for reuse: cry_diffusion.runtime)")
    return ap


def setup(args) -> torch.device:
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cpu" and not args.glibc_default:
        from cry_diffusion.runtime import reuse_freed_memory

        reuse_freed_memory()  # for both contenders alike: one process
    if device.type == "cuda":  # one process, one setting: the reference and ours run under the same one
        from cry_diffusion.runtime import prepare

        prepare(device)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = args.tf32 == "on"
    return device


def settings(args, device: torch.device) -> dict:
    """What every benchmark's JSON records of how it ran."""
    return {"machine": machine(device), "tf32": args.tf32 == "on" if device.type == "cuda" else None}


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


def reference_model(layers: int, channels: int, diffusion_steps: int = 200) -> nn.Module:
    """lmnt-com/diffwave 0.1.7 made unconditional: no upsampler, n_mels=1, a [B, 1, 1] zero spectrogram.

    The zero spectrogram still goes through each layer's 1x1 conditioner projection (a
    [B, 2C, 1] result that broadcasts over time), so the reference pays one extra add per layer.
    """
    try:
        from diffwave.model import DiffWave as LmntDiffWave
        from diffwave.params import params as lmnt_params
    except ImportError:
        sys.exit("the reference needs `pip install --no-deps diffwave==0.1.7` (its torchaudio import is never used here)")
    p = copy.copy(lmnt_params)
    p.residual_layers, p.residual_channels, p.n_mels = layers, channels, 1
    p.noise_schedule = list(torch.linspace(1e-4, 0.02, diffusion_steps).tolist())
    net = LmntDiffWave(p)
    net.spectrogram_upsampler = nn.Identity()

    class Reference(nn.Module):
        """Our calling convention, model(audio, step, label=None), around lmnt's model(audio, spectrogram, step)."""

        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, audio, step, label=None):
            zeros = torch.zeros(audio.shape[0], 1, 1, device=audio.device, dtype=audio.dtype)
            if step.is_floating_point():
                # lmnt's fractional-step lerp only broadcasts for one step (as its own sampler passes):
                # the fast sampler's steps are the same across the batch, so one stands for all
                step = step[:1]
            return self.net(audio, zeros, step).squeeze(1)

    return Reference()


def our_model(layers: int, channels: int) -> nn.Module:
    from cry_diffusion.model import DiffWave, ModelParams

    return DiffWave(ModelParams(residual_layers=layers, residual_channels=channels))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def alternate(contenders: dict, rounds: int, device: torch.device, warmup: int = 1) -> dict[str, list[float]]:
    """Wall seconds of each callable, run in turn `rounds` times after `warmup` untimed turns."""
    times = {name: [] for name in contenders}
    for r in range(warmup + rounds):
        for name, fn in contenders.items():
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            if r >= warmup:
                times[name].append(time.perf_counter() - t0)
    return times


def ratio(times: dict[str, list[float]], slow: str, fast: str) -> float:
    """Median over rounds of slow/fast: each round's pair ran back to back, under the same load."""
    return statistics.median(a / b for a, b in zip(times[slow], times[fast]))


def count_flops(fn) -> int:
    """FLOPs of one call of fn: run it on an eager (uncompiled) model, once, before any timing.

    The counter tracks modules through global hooks; a compiled model traced while they are
    registered keeps paying for them, so every hook must be gone before anything is timed.
    """
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    require_no_hooks()
    return counter.get_total_flops()


def require_no_hooks() -> None:
    """Stop if any global module hook is still registered (it would slow, and skew, what is timed next)."""
    from torch.nn.modules import module

    left = [name for name in dir(module) if name.startswith("_global_") and name.endswith("hooks") and getattr(module, name)]
    if left:
        raise RuntimeError(f"global module hooks still registered before timing: {left}")


def matmul_peak(device: torch.device, dtype=torch.float32, n: int | None = None, reps: int = 5) -> float:
    """Best FLOP/s of one square matmul (4096^2 on a GPU, 1024^2 on a CPU): the ceiling the models' convolutions
    and matmuls are held to. A CPU without half-precision units takes minutes for one fp16 product of 4096^2."""
    n = n or (4096 if device.type == "cuda" else 1024)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(reps + 1):
        sync(device)
        t0 = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def reset_peak_rss() -> None:
    with open("/proc/self/clear_refs", "w") as f:  # "5": reset VmHWM to the current RSS (Linux >= 4.0)
        f.write("5")


def peak_rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024


def child_peak(script: str, argv: list[str], timeout: float | None = None) -> float | str:
    """Run `script --probe ...` in a fresh process and read back the MB it printed last (its measured peak),
    or why there is none: a probe that fails or runs past `timeout` costs its figure, not the benchmark's."""
    try:
        out = subprocess.run([sys.executable, script, *argv], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"stopped after {timeout:.0f} s"
    if out.returncode:
        return f"failed ({out.returncode}): {out.stderr.strip().splitlines()[-1:]}"
    return float(out.stdout.strip().splitlines()[-1])


def write_json(path: str | None, figures: dict) -> None:
    if path:
        from cry_diffusion.atomic import write_text

        write_text(path, json.dumps(figures, indent=1))


def table(rows: list[list], header: list[str]) -> str:
    cells = [header] + [[f"{c:.3g}" if isinstance(c, float) else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def sized(description: str, sizes: dict) -> tuple:
    """A simulation benchmark's settings: sizes["full"], or sizes["quick"] / sizes["smoke"] with --quick / --smoke."""
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    which = ap.add_mutually_exclusive_group()
    which.add_argument("--quick", action="store_true", help="fewer clips and trials")
    which.add_argument("--smoke", action="store_true", help="every section at its smallest: a check that it runs")
    a = ap.parse_args()
    return sizes["smoke" if a.smoke else "quick" if a.quick else "full"]
