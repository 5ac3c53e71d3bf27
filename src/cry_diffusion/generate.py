"""Generate waveforms from a trained model file and write them as 16 kHz WAVs.

    python -m cry_diffusion.generate --model model.pt --n 8 --seconds 1 --steps 50 --out generated/

--steps picks the sampler (see cry_diffusion.diffusion): T (200) = full ancestral chain,
6 = DiffWave's fast schedule, 7 = the same closed to step T, anything else = DDIM, or with
--solver dpmpp2m DPM-Solver++(2M):

    python -m cry_diffusion.generate --model model.pt --n 8 --seconds 1 --steps 8 --solver dpmpp2m --out generated/
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from . import SAMPLE_RATE
from .audio import write_wav
from .checkpoint import read_model
from .diffusion import DDIM_SPACINGS, SOLVERS, DiffusionParams, choose_sampler, sample
from .model import DiffWave, ModelParams
from .runtime import amp_dtype, resolve_device, start

GRAPH_MODES = ("auto", "on", "off")
log = logging.getLogger(__name__)


def load_model(path, device="auto") -> tuple[DiffWave, dict]:
    """A model file from cry_diffusion.train -> (DiffWave holding its EMA weights, in eval mode; the file's dict)."""
    ckpt = read_model(path)
    model = DiffWave(ModelParams.from_dict(ckpt["model_params"]))
    model.load_state_dict(ckpt["model"])
    return model.to(resolve_device(device)).eval(), ckpt


def uses_cuda_graphs(graph: str, device: torch.device) -> bool:
    """The sampling.graph setting on this device: "auto" means on a GPU only (on a CPU there is nothing to replay)."""
    return graph == "on" or (graph == "auto" and device.type == "cuda")


def generate(model_path, n: int, seconds: float, steps: int, seed: int = 0, labels=None, guidance_scale: float = 1.0,
             batch_size: int = 16, device="auto", threads: int = 0, precision: str = "auto",
             graph: str = "auto", ddim_spacing: str = "logsnr", solver: str = "ddim") -> tuple[np.ndarray, dict]:
    """n waveforms of `seconds` each -> (float32 [n, samples] in [-1, 1], info dict).

    labels: None (unconditional), "each" (a class-conditional model cycles through its
    classes, an unconditional one ignores it), one class index / class name, or one per
    waveform. The same seed gives the same audio on the same kind of device (the noise is
    drawn there). precision as for training ("auto": bf16 autocast on a GPU, float32 on
    the CPU); graph: replay each denoising step as a CUDA graph ("auto": on a GPU). On the
    CPU neither pays (benchmarks/sampling.py). solver: what a step count other than T or a fast
    schedule's runs, "ddim" or "dpmpp2m"; ddim_spacing: which steps it visits
    (cry_diffusion.diffusion.ddim_steps).
    """
    device = start(device, threads)
    model, ckpt = load_model(model_path, device)
    return sample_from(model, ckpt, n, round(seconds * SAMPLE_RATE), seconds, steps, seed, labels, guidance_scale,
                       batch_size, device, precision, graph, ddim_spacing, solver)


def sample_from(model, ckpt: dict, n: int, shape, seconds: float, steps: int, seed: int = 0, labels=None,
                guidance_scale: float = 1.0, batch_size: int = 16, device="auto", precision: str = "auto",
                graph: str = "auto", ddim_spacing: str = "logsnr", solver: str = "ddim",
                condition: torch.Tensor | None = None) -> tuple[np.ndarray, dict]:  # fmt: skip
    """n outputs of `shape` from a loaded model file's network -> (float32 [n, *shape], info dict).

    What `generate` does after loading, for any network the project trains (DiffWave on audio,
    the mel prior on log-mels, the vocoder given `condition`); seconds: the audio the n outputs
    stand for, for the speed figures. The other arguments are `generate`'s.
    """
    if graph not in GRAPH_MODES:
        raise ValueError(f"graph must be one of {GRAPH_MODES}, got {graph!r}")
    device = torch.device(device) if not isinstance(device, torch.device) else device
    params = DiffusionParams.from_dict(ckpt["diffusion_params"])
    class_names = ckpt.get("class_names")
    if labels == "each":
        labels = [k % len(class_names) for k in range(n)] if class_names else None
    if labels is not None:
        labels = [labels] * n if isinstance(labels, (int, str)) else list(labels)
        labels = [class_names.index(x) if isinstance(x, str) else int(x) for x in labels]
    sampler = choose_sampler(steps, params, solver)
    amp = amp_dtype(precision, device)
    graphed = uses_cuda_graphs(graph, device)

    def run(graph: bool) -> np.ndarray:
        out = sample(model, params, n, shape, sampler, steps, labels=labels, guidance_scale=guidance_scale,
                     generator=torch.Generator(device).manual_seed(seed), device=device, batch_size=batch_size,
                     autocast=amp, graph=graph, ddim_spacing=ddim_spacing, condition=condition)
        return out.cpu().numpy()  # waits for the device, so the wall time is the real one

    start, graph_error = time.perf_counter(), None
    try:
        out = run(graphed)
    except RuntimeError as exc:  # a model or driver that graphs can't record: slower, but the samples still come
        if not graphed or graph == "on":
            raise
        graph_error, graphed = f"{type(exc).__name__}: {exc}", False
        log.warning("CUDA graph capture failed, sampling eagerly instead (sampling.graph: off skips the try): %s",
                    graph_error)
        start = time.perf_counter()
        out = run(False)
    wall = time.perf_counter() - start
    info = {"sampler": sampler, "steps": steps, "ddim_spacing": ddim_spacing if sampler in SOLVERS else None, "n": n, "seconds": seconds, "seed": seed,
            "labels": labels, "label_names": [class_names[k] for k in labels] if labels else None,
            "guidance_scale": guidance_scale, "device": str(device), "autocast": str(amp).replace("torch.", "") if amp else None,
            "cuda_graph": graphed, "cuda_graph_error": graph_error, "model_step": ckpt.get("step"),
            "model_trained_on": ckpt.get("device"), "model_elapsed_seconds": ckpt.get("elapsed_seconds"),
            "wall_seconds": wall, "audio_seconds_per_wall_second": n * seconds / wall,
            "wall_seconds_per_audio_second": wall / (n * seconds)}
    return out, info


def write_wavs(audio: np.ndarray, folder, prefix: str, names: list[str] | None = None) -> list[Path]:
    """One 16-bit PCM WAV per row, named {prefix}_000.wav (or {prefix}_000_{name}.wav), each written atomically."""
    paths = [Path(folder) / f"{prefix}_{i:03d}{'_' + names[i] if names else ''}.wav" for i in range(len(audio))]
    for path, wave in zip(paths, audio):
        write_wav(path, wave)
    return paths


def sampling_arguments(sampling: dict, seconds: float, device="auto", threads: int = 0) -> dict:
    """`generate`'s keyword arguments from the config's sampling section at one step count (its `steps` an int)."""
    keys = ("steps", "seed", "guidance_scale", "batch_size", "precision", "graph", "ddim_spacing", "solver")
    return {"n": sampling["n_samples"], "seconds": seconds, "labels": "each", "device": device, "threads": threads} | {
        k: sampling[k] for k in keys}


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The command line's sampling options (`main`'s, and cry_diffusion.generator's for either route)."""
    ap.add_argument("--out", required=True, help="folder for the WAVs")
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--label", help="class name or index (class-conditional models)")
    ap.add_argument("--guidance-scale", type=float, default=1.0)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--prefix", default="sample")
    ap.add_argument("--device", default="auto", help="auto (a GPU when there is one), cpu, cuda, cuda:1 ...")
    ap.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"))
    ap.add_argument("--graph", default="auto", choices=GRAPH_MODES, help="CUDA graphs (auto: on a GPU)")
    ap.add_argument("--ddim-spacing", default="logsnr", choices=DDIM_SPACINGS, help="which steps DDIM visits")
    ap.add_argument("--solver", default="ddim", choices=SOLVERS, help="what step counts other than T, 6 and 7 run")


def parsed_arguments(a: argparse.Namespace) -> dict:
    """`generate`'s keyword arguments from options `add_arguments` defined."""
    label = int(a.label) if a.label is not None and a.label.isdigit() else a.label
    return {"n": a.n, "seconds": a.seconds, "steps": a.steps, "seed": a.seed, "labels": label,
            "guidance_scale": a.guidance_scale, "batch_size": a.batch_size, "device": a.device, "precision": a.precision,
            "graph": a.graph, "ddim_spacing": a.ddim_spacing, "solver": a.solver}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    add_arguments(ap)
    a = ap.parse_args(argv)
    audio, info = generate(a.model, **parsed_arguments(a))
    write_wavs(audio, a.out, a.prefix)
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
