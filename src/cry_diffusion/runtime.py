"""Where and how the numbers run: the device, the autocast dtype, CPU memory reuse, CUDA graphs.

Every stage that uses torch takes its device from `resolve_device`: "auto" (or None) is
CUDA when `torch.cuda.is_available()`, else the CPU, decided here and nowhere else. Two
resolvers once disagreed, and sampling ran on the CPU of a GPU machine while training used
the GPU. Each stage records the device it used (model file, info.json, embedding.json,
evaluation JSONs), and the report shows it.

    from cry_diffusion.runtime import resolve_device, amp_dtype, reuse_freed_memory
    device = resolve_device("auto")           # cuda:LOCAL_RANK on a GPU machine, cpu elsewhere
    dtype = amp_dtype("auto", device)         # bf16 (or fp16) on a GPU, None (float32) on the CPU
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys

import torch

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # mallopt parameters, from glibc's malloc.h
_done = False


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """"auto" or None -> cuda:LOCAL_RANK when a GPU is visible, else cpu; "cuda" -> cuda:LOCAL_RANK; anything
    else as torch reads it.

    LOCAL_RANK (set by torchrun, 0 otherwise) gives each process of a multi-GPU run its own card; the
    workflow passes "auto" already resolved (to "cuda" or "cpu"), so bare "cuda" means the same card.
    """
    if device is None or str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if str(device) == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device(device)


def amp_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype for a precision setting: "auto" is bf16 on GPUs that have it, else fp16, and none on the CPU.

    On the CPU neither half type pays: oneDNN's bf16 convolutions ran slower than float32 here.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        if device.type != "cuda":
            return None
        precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def reuse_freed_memory() -> bool:
    """Serve big allocations from the heap and keep freed memory for reuse (glibc only; else a no-op).

    glibc's malloc serves every request above its mmap threshold (at most 32 MB) with a fresh
    mapping from the kernel and unmaps it on free. A DiffWave activation at full batch is
    bigger than that ([16, 32, 16000] float32 is 33 MB; the gate's input twice that), so every
    op of every layer page-faults in and zeroes new memory: sampling at batch 16 ran 2-3x
    slower per clip than at batch 8. The process keeps its peak memory instead of handing it
    back between ops, which is what a training or sampling loop wants. Returns whether the
    setting is in force.
    """
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        _done = bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30))
    except (OSError, AttributeError):  # musl and other libcs have no mallopt: their allocator, their rules
        _done = False
    log.debug("reuse_freed_memory: %s", _done)
    return _done


def prepare(device: torch.device) -> None:
    """Per-process settings for running on `device`: CPU memory reuse, or the GPU's fast float32 paths."""
    if device.type == "cpu":
        reuse_freed_memory()
    elif device.type == "cuda":
        if device.index is not None:
            torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        # fixed shapes: the autotuned conv is reused every call. Autotuning times candidates, so two runs may pick
        # different algorithms: on a GPU the same seed repeats up to float rounding, not bit for bit (CPU runs do)
        torch.backends.cudnn.benchmark = True


def start(device="auto", threads: int = 0) -> torch.device:
    """The device a sampling or scoring stage runs on, resolved and prepared; threads > 0 sets torch's CPU threads."""
    if threads:
        torch.set_num_threads(threads)
    device = resolve_device(device)
    prepare(device)
    return device


class Replay:
    """fn(*tensors) over fixed input buffers, recorded once as a CUDA graph and replayed per call.

    A denoising step at batch 1 is ~300 small kernels; launched one by one from Python the GPU
    idles between them. A graph launches them all at once. Calls copy their arguments into the
    buffers the graph reads, and the result is the graph's own output buffer: it is overwritten
    by the next call, so use it before calling again.

    capture=False runs fn eagerly over the same buffers: the buffer logic, testable on a CPU.
    """

    def __init__(self, fn, *examples: torch.Tensor, capture: bool = True, warmup: int = 2):
        self.fn = fn
        self.inputs = [e.detach().clone() for e in examples]
        self.graph = None
        if not capture:
            return
        side = torch.cuda.Stream()  # warm-up (cudnn autotuning, lazy inits) off the capturing stream, as CUDA asks
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):
                fn(*self.inputs)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.output = fn(*self.inputs)

    def __call__(self, *args: torch.Tensor) -> torch.Tensor:
        for buffer, value in zip(self.inputs, args):
            buffer.copy_(value)
        if self.graph is None:
            return self.fn(*self.inputs)
        self.graph.replay()
        return self.output
