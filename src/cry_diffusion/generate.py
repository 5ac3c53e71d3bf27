"""Generate waveforms from a trained model file and write them as 16 kHz WAVs.

    python -m cry_diffusion.generate --model model.pt --n 8 --seconds 1 --steps 50 --out generated/

--steps picks the sampler (see cry_diffusion.diffusion): T (200) = full ancestral chain,
6 = DiffWave's fast schedule, anything else = DDIM.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from . import SAMPLE_RATE
from .audio import write_wav
from .diffusion import DiffusionParams, choose_sampler, sample
from .model import DiffWave, ModelParams
from .runtime import reuse_freed_memory
from .train import amp_dtype


def load_model(path, device=None) -> tuple[DiffWave, dict]:
    """A model file from cry_diffusion.train -> (DiffWave holding its EMA weights, in eval mode; the file's dict)."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    model = DiffWave(ModelParams.from_dict(ckpt["model_params"]))
    model.load_state_dict(ckpt["model"])
    return model.to(device or "cpu").eval(), ckpt


def generate(model_path, n: int, seconds: float, steps: int, seed: int = 0, labels=None, guidance_scale: float = 1.0,
             batch_size: int = 16, device=None, threads: int = 0, precision: str = "auto",
             compile: str = "auto") -> tuple[np.ndarray, dict]:
    """n waveforms of `seconds` each -> (float32 [n, samples] in [-1, 1], info dict).

    labels: None (unconditional), "each" (a class-conditional model cycles through its
    classes, an unconditional one ignores it), one class index / class name, or one per
    waveform. The same seed gives the same audio on the same device. precision and compile
    as for training ("auto": bf16 autocast and torch.compile with CUDA graphs on a GPU, plain
    float32 on the CPU, where neither pays: benchmarks/sampling.py).
    """
    if threads:
        torch.set_num_threads(threads)
    model, ckpt = load_model(model_path, device)
    params = DiffusionParams.from_dict(ckpt["diffusion_params"])
    class_names = ckpt.get("class_names")
    if labels == "each":
        labels = [k % len(class_names) for k in range(n)] if class_names else None
    if labels is not None:
        labels = [labels] * n if isinstance(labels, (int, str)) else list(labels)
        labels = [class_names.index(x) if isinstance(x, str) else int(x) for x in labels]
    sampler = choose_sampler(steps, params)
    length = round(seconds * SAMPLE_RATE)
    device = next(model.parameters()).device
    if device.type == "cpu":
        reuse_freed_memory()
    generator = torch.Generator().manual_seed(seed)  # on the CPU: the noise does not depend on the device

    amp = amp_dtype(precision, device)
    net = model
    if compile == "on" or (compile == "auto" and device.type == "cuda"):
        # every step runs the same shapes: "reduce-overhead" replays them as one CUDA graph
        net = torch.compile(model, mode="reduce-overhead" if device.type == "cuda" else "default")

    start = time.perf_counter()
    with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
        audio = sample(net, params, n, length, sampler, steps, labels=labels, guidance_scale=guidance_scale,
                       generator=generator, device=device, batch_size=batch_size)
    audio = audio.cpu().numpy()  # waits for the device, so the wall time below is the real one
    wall = time.perf_counter() - start
    info = {"sampler": sampler, "steps": steps, "n": n, "seconds": seconds, "seed": seed,
            "labels": labels, "label_names": [class_names[k] for k in labels] if labels else None,
            "guidance_scale": guidance_scale, "device": str(device), "autocast": str(amp).replace("torch.", "") if amp else None, "model_step": ckpt.get("step"),
            "wall_seconds": wall, "audio_seconds_per_wall_second": n * length / SAMPLE_RATE / wall,
            "wall_seconds_per_audio_second": wall / (n * length / SAMPLE_RATE)}
    return audio, info


def write_wavs(audio: np.ndarray, folder, prefix: str, names: list[str] | None = None) -> list[Path]:
    """One 16-bit PCM WAV per row, named {prefix}_000.wav (or {prefix}_000_{name}.wav), each written atomically."""
    paths = [Path(folder) / f"{prefix}_{i:03d}{'_' + names[i] if names else ''}.wav" for i in range(len(audio))]
    for path, wave in zip(paths, audio):
        write_wav(path, wave)
    return paths


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True, help="folder for the WAVs")
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--label", help="class name or index (class-conditional models)")
    ap.add_argument("--guidance-scale", type=float, default=1.0)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--prefix", default="sample")
    ap.add_argument("--device")
    a = ap.parse_args(argv)
    label = int(a.label) if a.label is not None and a.label.isdigit() else a.label
    audio, info = generate(a.model, a.n, a.seconds, a.steps, a.seed, label, a.guidance_scale, a.batch_size, a.device)
    write_wavs(audio, a.out, a.prefix)
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
