"""The embedded corpus: synthetic infant cries (cry_diffusion.synth_cry) written as a corpus of WAV folders.

Real infant-cry corpora can't be redistributed, so the package ships this one: five category folders
of cries at mixed sample rates, some stereo, so ingestion and resampling run for real. The pipeline's
`embedded_corpus` rule writes it with config.yaml's `embedded_corpus` settings:

    from cry_diffusion import synth
    synth.write_corpus("results/embedded_corpus", clips_per_category=12, seconds=(2.0, 4.0), seed=0)
    clips = synth.embedded_clips()   # the same cries, mono at 16 kHz, without writing them
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from .atomic import atomic_path
from .synth_cry import category_key, keyed_rng, synthesize_cry
from .synth_params import CATEGORIES


def write_corpus(root, clips_per_category: int = 8, seconds: tuple[float, float] = (2.0, 4.0), seed: int = 0,
                 sample_rates: tuple[int, ...] = (44100, 22050), stereo_fraction: float = 0.3,
                 categories: tuple[str, ...] = CATEGORIES) -> list[Path]:
    """Write root/<category>/<category>_<k:03d>.wav files: durations drawn uniformly from `seconds`, sample rates alternating/drawn from
    `sample_rates` (mixed), a fraction stereo (two slightly different channels, e.g. small gain/delay difference), PCM_16. Deterministic for the same args.
    Each file written atomically via `cry_diffusion.atomic.atomic_path` (already exists: a context manager yielding a temp path then renaming). Returns the paths written.

    Sample rates cycle through `sample_rates`, offset per category, so every category holds a mix.
    round(stereo_fraction * clips_per_category) clips per category are stereo: the second channel is the
    first delayed by 2-20 samples and attenuated by 0.5-2.5 dB, like a second microphone nearby.
    """
    root = Path(root)
    paths = []
    for ci, cat in enumerate(categories):
        key = category_key(cat)
        rng = keyed_rng(seed, key, 2)
        durs = rng.uniform(seconds[0], seconds[1], clips_per_category)
        n_stereo = int(round(stereo_fraction * clips_per_category))
        stereo = set(rng.permutation(clips_per_category)[:n_stereo].tolist())
        for k in range(clips_per_category):
            sr = int(sample_rates[(k + ci) % len(sample_rates)])
            x = synthesize_cry(cat, float(durs[k]), sr, seed=int(keyed_rng(seed, key, 3, k).integers(2**31)))
            if k in stereo:
                delay = int(rng.integers(2, 21))
                gain = 10 ** (-rng.uniform(0.5, 2.5) / 20)
                right = np.concatenate([np.zeros(delay, np.float32), x[:len(x) - delay]]) * np.float32(gain)
                x = np.stack([x, right[:len(x)]], axis=1)
            path = root / cat / f"{cat}_{k:03d}.wav"
            with atomic_path(path) as tmp:
                sf.write(tmp, x, sr, subtype="PCM_16", format="WAV")
            paths.append(path)
    return paths


def embedded_clips(clips_per_category: int = 12, seconds: tuple[float, float] = (2.0, 4.0), seed: int = 0,
                   sample_rate: int = 16000, categories: tuple[str, ...] = CATEGORIES) -> list[np.ndarray]:
    """The cries `write_corpus` would write for these arguments (same durations and seeds), mono at `sample_rate`."""
    clips = []
    for cat in categories:
        key = category_key(cat)
        durs = keyed_rng(seed, key, 2).uniform(seconds[0], seconds[1], clips_per_category)
        for k in range(clips_per_category):
            clips.append(synthesize_cry(cat, float(durs[k]), sample_rate, seed=int(keyed_rng(seed, key, 3, k).integers(2**31))))
    return clips
