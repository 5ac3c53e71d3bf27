"""Training checkpoints: where they live, how they are written, and the random state they carry.

A checkpoint is `step-NNNNNNN.pt` in a run's folder, written atomically, and holds
everything a resumed run needs to continue as if never stopped: weights, EMA, optimizer,
loss scaler, every random stream of every rank, and the loss history so far.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from .atomic import atomic_path

KEEP = 2  # the newest two: one spare in case the newest is somehow unreadable


def checkpoints(folder) -> list[Path]:
    """Checkpoints (or snapshots) in `folder`, oldest first (the zero-padded step makes name order step order)."""
    return sorted(Path(folder).glob("step-*.pt"))


def newest_readable(folder) -> tuple[list[tuple[Path, str]], dict | None]:
    """(the unreadable checkpoints newer than it, each with why; the newest checkpoint torch can load, or None).

    A checkpoint cut short (a full disk, a copy interrupted, a file system's fault) is passed over for
    the one before it, which KEEP holds back for this.
    """
    skipped = []
    for path in reversed(checkpoints(folder)):
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(state, dict) or "step" not in state:
                raise ValueError("not a training checkpoint")
            return skipped, state
        except Exception as exc:  # noqa: BLE001 (torch raises RuntimeError, EOFError, UnpicklingError ... here)
            skipped.append((path, _why(exc)))
    return skipped, None


def _why(exc: Exception) -> str:
    """torch's error in a few words: its first sentence, on one line."""
    return " ".join(str(exc).split()).split(". ")[0][:160] or type(exc).__name__


class UnreadableModel(ValueError):
    """A model file torch can't load: named, with how to get it back."""


def read_model(path) -> dict:
    """A model file (train's output, or a snapshot) as saved; an unreadable one is a one-line error saying how to rebuild it."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 (a cut-short file raises RuntimeError, EOFError, UnpicklingError ...)
        raise UnreadableModel(f"{path} is unreadable ({_why(exc)}): delete it and run the same command again; the train "
                              "stage rebuilds it from the run's newest checkpoint") from None


def read_network(path, network: str, what: str) -> dict:
    """A model file that says it holds `network` (its "network" entry; a waveform DiffWave's has none), as saved.

    Handing one generator's file to another is one error naming the file and both kinds, not a shape mismatch.
    """
    state = read_model(path)
    if state.get("network") != network:
        raise ValueError(f"{path} holds a {state.get('network') or 'waveform DiffWave'} model, not {what}")
    return state


def step_of(path) -> int:
    """The step a checkpoint's file name says."""
    return int(Path(path).stem.split("-")[1])


def write(folder: Path, state: dict, keep: int | None = KEEP) -> Path:
    """Save `state` (with its "step") as the newest file in `folder`, then drop all but the newest `keep` (None: none)."""
    path = Path(folder) / f"step-{state['step']:07d}.pt"
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    for old in checkpoints(folder)[:-keep] if keep else []:
        old.unlink()
    return path


def rng_state(data_gen: torch.Generator, noise_gen: torch.Generator) -> dict:
    """Every random stream a training step draws from."""
    # tensors and plain Python types only, so torch.load(weights_only=True) accepts it
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    numpy_state = (name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss)
    return {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state(),
            "data": data_gen.get_state(), "noise": noise_gen.get_state(),
            "cuda": torch.cuda.get_rng_state() if noise_gen.device.type == "cuda" else None}


def set_rng_state(state: dict, data_gen: torch.Generator, noise_gen: torch.Generator) -> None:
    random.setstate(state["python"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    data_gen.set_state(state["data"])
    noise_gen.set_state(state["noise"])
    if state["cuda"] is not None and noise_gen.device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"])
