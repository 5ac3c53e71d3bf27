"""The duplicate check's fingerprint (cry_diffusion.fingerprint): how far re-encodes of one cry lie from it, how
close distinct cries come, and how long the search over many clips of one duration takes.

    python benchmarks/fingerprint.py                       # the figures of docs/datasets.md
    python benchmarks/fingerprint.py --distinct 100 --search 1000

Every file goes through ingest's own decoding (cry_diffusion.audio, the file's own rate, channels
averaged); distances are fingerprint.distance's, in dB, against fingerprint.THRESHOLD_DB.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from cry_diffusion import audio, fingerprint
from cry_diffusion.synth_cry import synthesize_cry
from cry_diffusion.synth_params import CATEGORIES


def decoded_print(path: Path) -> np.ndarray:
    info = audio.probe(path)
    mono = np.concatenate([audio.downmix(block) for block in audio.blocks(path, info)])
    return fingerprint.fingerprint(mono, info.sample_rate)


def re_encodes(folder: Path) -> list[tuple[str, float]]:
    """A 3-s cry at 44.1 kHz, and the same audio in other encodings, rates and channel counts."""
    cry = synthesize_cry("pain", 3.0, 44100, seed=3)
    versions = {
        "original.wav": (cry, 44100, {"subtype": "PCM_16"}),
        "flac.flac": (cry, 44100, {}),
        "resampled-22050.wav": (soxr.resample(cry, 44100, 22050), 22050, {"subtype": "PCM_16"}),
        "resampled-16000.wav": (soxr.resample(cry, 44100, 16000), 16000, {"subtype": "PCM_16"}),
        "resampled-8000.wav": (soxr.resample(cry, 44100, 8000), 8000, {"subtype": "PCM_16"}),
        "stereo.wav": (np.stack([cry, 0.8 * cry], 1), 44100, {"subtype": "PCM_16"}),
        "vorbis.ogg": (cry, 44100, {"format": "OGG", "subtype": "VORBIS"}),
        "mp3.mp3": (cry, 44100, {"format": "MP3", "subtype": "MPEG_LAYER_III"}),
    }
    prints = {}
    for name, (x, rate, how) in versions.items():
        try:
            sf.write(folder / name, x, rate, **how)
        except (sf.LibsndfileError, ValueError, TypeError) as exc:  # an old libsndfile without MP3
            print(f"  {name}: not written ({exc})")
            continue
        prints[name] = decoded_print(folder / name)
    return [(name, fingerprint.distance(prints["original.wav"], p)) for name, p in prints.items() if name != "original.wav"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--distinct", type=int, default=200, help="distinct 3-s synthetic cries, compared pair by pair")
    ap.add_argument("--search", type=int, default=5000, help="1-s clips of one duration for the timed search")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="cry-fingerprint-") as tmp:
        print("re-encodes of one 3-s cry, distance to the original (dB):")
        for name, d in re_encodes(Path(tmp)):
            print(f"  {name:22s} {d:.2f}")

    prints = [fingerprint.fingerprint(synthesize_cry(CATEGORIES[k % len(CATEGORIES)], 3.0, 16000, seed=k), 16000)
              for k in range(args.distinct)]  # fmt: skip
    pairs = np.array([fingerprint.distance(a, b) for a, b in itertools.combinations(prints, 2)])
    print(f"\n{len(pairs):,} pairs of {args.distinct} distinct cries: closest {pairs.min():.2f} dB, 1st percentile "
          f"{np.percentile(pairs, 1):.2f}, median {np.median(pairs):.2f}; at or under the {fingerprint.THRESHOLD_DB} dB "
          f"threshold: {int((pairs <= fingerprint.THRESHOLD_DB).sum())}")
    tones = [fingerprint.fingerprint((0.5 * np.sin(2 * np.pi * f * np.arange(48000) / 16000)).astype(np.float32), 16000)
             for f in (440, 460)]  # fmt: skip
    print(f"steady tones at 440 and 460 Hz: {fingerprint.distance(*tones):.2f} dB (the blind spot)")

    clips = [(f"clip{k}", 1.0, fingerprint.fingerprint(synthesize_cry(CATEGORIES[k % len(CATEGORIES)], 1.0, 16000,
                                                                      seed=10_000 + k), 16000))
             for k in range(args.search)]  # fmt: skip
    t0 = time.perf_counter()
    found = fingerprint.duplicates(clips)
    print(f"\nthe search over {args.search:,} distinct 1-s clips of one duration: {time.perf_counter() - t0:.1f} s, "
          f"{len(found)} taken for copies")


if __name__ == "__main__":
    main()
