"""The two generators behind one call, and the names of what they make.

- "waveform": DiffWave on audio from Gaussian noise, as the paper trains it (cry_diffusion.model,
  train, generate).
- "mel": a diffusion prior over log-mel spectrograms (cry_diffusion.mel_prior, mel_prior_train)
  and a vocoder that makes audio of them (cry_diffusion.vocoder, vocoder_train).

A route is one way from noise to audio: "waveform", or "mel-<vocoder>" for each vocoder. A set
of generated clips, a system, is a route at a step count, "<route>-steps-<S>"; a vocoder's ceiling
is "copy-synthesis-<vocoder>", held-out real log-mels through it. The workflow names its outputs
so, the evaluation scores every system the same way, and progress samples snapshots through
`generate`:

    from cry_diffusion import generator
    audio, info = generator.generate("waveform", "model.pt", n=8, seconds=1.0, steps=200)
    audio, info = generator.generate("mel-griffin_lim", "mel_prior/model.pt", n=8, seconds=1.0, steps=50)
    audio, info = generator.generate("mel-diffwave", "mel_prior/model.pt", n=8, seconds=1.0, steps=50,
                                     vocoder={"model": "vocoder/diffwave/model.pt", "steps": 6})

or as WAVs, from the command line:

    python -m cry_diffusion.generator --route mel-griffin_lim --model results/embedded/mel_prior/model.pt \
        --n 8 --seconds 1 --steps 200 --out generated/
"""

from __future__ import annotations

import re

import numpy as np

from . import SAMPLE_RATE

GENERATORS = ("waveform", "mel")
_SYSTEM = re.compile(r"^(?P<route>waveform|mel-[a-z_]+)-steps-(?P<steps>\d+)$")


def routes(generators, vocoders) -> list[str]:
    """The routes a run makes: the waveform one, and one per vocoder for the mel generator."""
    unknown = set(generators) - set(GENERATORS)
    if unknown:
        raise ValueError(f"generators must be among {GENERATORS}, got {sorted(unknown)}")
    return (["waveform"] if "waveform" in generators else []) + ([f"mel-{v}" for v in vocoders] if "mel" in generators else [])


def system(route: str, steps: int) -> str:
    return f"{route}-steps-{steps}"


def parse(name: str) -> tuple[str, int] | None:
    """A system's (route, step count); None for anything else (a copy synthesis, a reference set)."""
    m = _SYSTEM.match(name)
    return (m["route"], int(m["steps"])) if m else None


def copy_synthesis(vocoder: str) -> str:
    return f"copy-synthesis-{vocoder}"


def label(name: str) -> str:
    """How a table names a set: "waveform DiffWave, 200 steps", "mel prior + griffin_lim, 50 steps", ..."""
    if (parsed := parse(name)) is not None:
        route, steps = parsed
        return f"{route_label(route)}, {steps} steps"
    if name.startswith("copy-synthesis-"):
        return f"copy synthesis, {name.removeprefix('copy-synthesis-')} (real log-mels)"
    return name


def route_label(route: str) -> str:
    return "waveform DiffWave" if route == "waveform" else f"mel prior + {route.removeprefix('mel-')}"


def vocoder_of(route: str) -> str | None:
    return None if route == "waveform" else route.removeprefix("mel-")


def generate(route: str, model_path, n: int, seconds: float, steps: int, seed: int = 0, labels=None,
             vocoder: dict | None = None, **sampling) -> tuple[np.ndarray, dict]:  # fmt: skip
    """n clips of `seconds` from a route's model file (a waveform model, or a mel prior) -> (audio [n, samples], info).

    sampling: further keyword arguments of cry_diffusion.generate.generate (guidance_scale,
    batch_size, device, threads, precision, graph, ddim_spacing, solver). vocoder: the mel route's
    vocoder settings, as the config's vocoder.<kind> section less its training (model: its trained
    file; steps; Griffin-Lim's iterations and momentum).
    """
    if route == "waveform":
        from .generate import generate as waveform

        return waveform(model_path, n, seconds, steps, seed, labels, **sampling)
    from .mel import MelParams
    from .mel_prior import generate as prior
    from .vocoder import GriffinLimParams, vocode

    kind = vocoder_of(route)
    mels, info = prior(model_path, n, seconds, steps, seed, labels, **sampling)
    settings = vocoder or {}
    mel = MelParams.from_dict(info["mel_params"])
    audio, vocoded = vocode(mels, kind, mel, round(seconds * SAMPLE_RATE), settings.get("model"), settings.get("steps"),
                            seed, sampling.get("batch_size", 16), sampling.get("device", "cpu"),
                            griffin=GriffinLimParams.from_dict(settings))  # fmt: skip
    return audio, joined(info, vocoded)


def joined(prior_info: dict, vocoder_info: dict) -> dict:
    """A mel-route set's info: the prior's sampling, the vocoder's, and the wall time of both (the speed figures' basis)."""
    wall = prior_info["wall_seconds"] + vocoder_info["wall_seconds"]
    audio = prior_info["n"] * prior_info["seconds"]
    return prior_info | {"vocoder": vocoder_info, "prior_wall_seconds": prior_info["wall_seconds"], "wall_seconds": wall,
                         "audio_seconds_per_wall_second": audio / wall, "wall_seconds_per_audio_second": wall / audio}


def main(argv=None) -> None:
    import argparse
    import json

    from .generate import add_arguments, parsed_arguments, write_wavs

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--route", default="waveform", help="waveform, mel-griffin_lim or mel-diffwave")
    ap.add_argument("--model", required=True, help="the route's model file: a waveform DiffWave, or a mel prior")
    ap.add_argument("--vocoder-model", help="mel-diffwave: the trained vocoder's model file")
    ap.add_argument("--vocoder-steps", type=int, help="mel-diffwave: its sampling steps (default: its fast schedule)")
    add_arguments(ap)
    a = ap.parse_args(argv)
    vocoder = {"model": a.vocoder_model, "steps": a.vocoder_steps}
    audio, info = generate(a.route, a.model, vocoder=vocoder, **parsed_arguments(a))
    write_wavs(audio, a.out, a.prefix)
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
