"""One library call in N processes under torchrun, started from a process that is not under torchrun itself.

    from cry_diffusion.torchrun import call
    call(2, train_dataset, segments_npy="...", ...)  # keyword arguments only

The pipeline's `train` rule uses it for `train.gpus: N`: each of the N processes imports the
function (a module-level one, by its module and name) and calls it with the same keyword arguments, and torchrun gives each its RANK,
WORLD_SIZE and LOCAL_RANK (its card: cry_diffusion.runtime.resolve_device). CUDA processes talk
over NCCL, CPU ones over gloo, on this machine only (`--standalone`: a free port of its own, so
two pipelines side by side don't meet). N = 1 calls the function here, in this process.

The workers write to this process's stderr, which a workflow script has pointed at its rule's
log, and to its stdout (progress lines, cry_diffusion.console), which Snakemake shows. SIGTERM (Snakemake stopping the job, SLURM's time limit) is passed on to torchrun, which
passes it to the workers: training checkpoints and exits with 143.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path


def _function(target: str):
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def call(nproc: int, fn, /, **kwargs):
    """fn(**kwargs) in `nproc` processes.

    Returns the function's result for one process, None for several. kwargs must survive JSON
    (paths as strings). Raises CalledProcessError when torchrun reports a failed worker.
    """
    if nproc < 1:
        raise ValueError(f"need at least one process, got {nproc}")
    if nproc == 1:
        return fn(**kwargs)
    target = f"{fn.__module__}:{fn.__qualname__}"
    src = str(Path(__file__).resolve().parents[1])  # this copy of the library, in every worker
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as spec:
        json.dump({"target": target, "kwargs": kwargs}, spec)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
           "-m", "cry_diffusion.torchrun", spec.name]
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        err = sys.stderr if _has_fd(sys.stderr) else None
        proc = subprocess.Popen(cmd, env=env, stderr=err)
        old = signal.signal(signal.SIGTERM, lambda *_: proc.send_signal(signal.SIGTERM)) \
            if _in_main_thread() else None
        try:
            returncode = proc.wait()
        finally:
            if old is not None:
                signal.signal(signal.SIGTERM, old)
    finally:
        os.unlink(spec.name)
    if returncode:
        raise subprocess.CalledProcessError(returncode, cmd)


def _has_fd(stream) -> bool:
    try:
        stream.fileno()
        return True
    except (AttributeError, OSError, ValueError):  # pytest's capture, a StringIO: the workers keep ours
        return False


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def main(argv=None) -> None:
    """A worker: run the call that `call` wrote down (python -m cry_diffusion.torchrun SPEC.json, under torchrun)."""
    (path,) = argv if argv is not None else sys.argv[1:]
    spec = json.loads(Path(path).read_text())
    logging.basicConfig(level=logging.INFO if os.environ.get("RANK", "0") == "0" else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    _function(spec["target"])(**spec["kwargs"])


if __name__ == "__main__":
    main()
