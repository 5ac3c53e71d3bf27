"""Process settings that the benchmarks showed to matter on the CPU.

glibc's malloc serves every request above its mmap threshold (at most 32 MB) with a fresh
mapping from the kernel and unmaps it on free. A DiffWave activation at full batch is
bigger than that ([16, 32, 16000] float32 is 33 MB; the gate's input twice that), so every
op of every layer page-faults in and zeroes new memory: sampling at batch 16 ran 2-3x
slower per clip than at batch 8. Keeping big blocks on the heap lets PyTorch's next op
reuse the memory the last one freed.

    from cry_diffusion.runtime import reuse_freed_memory
    reuse_freed_memory()   # once, before the tensors get big
"""

from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # mallopt parameters, from glibc's malloc.h
_done = False


def reuse_freed_memory() -> bool:
    """Serve big allocations from the heap and keep freed memory for reuse (glibc only; else a no-op).

    The process keeps its peak memory instead of handing it back between ops, which is
    what a training or sampling loop wants. Returns whether the setting is in force.
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
