"""cry_diffusion.runtime: big tensors come from malloc's heap (reusable) instead of fresh kernel mappings.

Read from glibc's own accounting (mallinfo2), not timed; benchmarks/sampling.py times the effect.

    pytest tests/test_runtime.py
"""

import subprocess
import sys

import pytest

MAPPED_BYTES = """
import ctypes, sys, torch
if sys.argv[1] == "reuse":
    from cry_diffusion.runtime import reuse_freed_memory
    assert reuse_freed_memory() and reuse_freed_memory()  # idempotent
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
x = torch.empty(64 << 20, dtype=torch.uint8).fill_(1)  # 64 MB: above glibc's largest mmap threshold
print(libc.mallinfo2().hblkhd)  # bytes held in separately mapped blocks
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_big_allocations_come_from_the_heap():
    mapped = {mode: int(subprocess.run([sys.executable, "-c", MAPPED_BYTES, mode], capture_output=True, text=True,
                                       check=True).stdout) for mode in ("default", "reuse")}  # fmt: skip
    assert mapped["default"] >= 64 << 20  # glibc's default: its own mapping, unmapped again on free
    assert mapped["reuse"] < 64 << 20  # from the heap, where the next op can reuse it
