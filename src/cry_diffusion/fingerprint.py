"""The same recording, whatever its encoding: a fingerprint that survives re-encoding, resampling and new containers.

Byte hashes catch only byte-identical copies; phone corpora re-upload the same cry as WAV,
FLAC, 3GP or at another rate, and a copy on each side of the train/held-out split would
score the model against its own training data. The fingerprint is each 50-ms frame's energy
in 24 log-spaced bands from 150 Hz to 4 kHz (below the Nyquist rate of 8-kHz phone audio), in dB
below the file's loudest cell and floored 60 dB down, so gain, rate and codec hardly move it.
Two files are the same audio when their durations agree and the mean absolute difference of
their fingerprints, at the best of five alignments (codecs add a few ms of delay), is at most
THRESHOLD_DB.

Measured by benchmarks/fingerprint.py (docs/datasets.md): re-encodes of one 3-s synthetic cry
(FLAC, 22.05/16/8 kHz resamples, stereo, Ogg Vorbis, MP3) sat at 0-0.43 dB from the original;
the 19,900 pairs of 200 distinct synthetic cries at 4.7 dB and above (1st percentile 6.5): no
false match. Its blind spot: steady pure tones a few percent apart (440 and 460 Hz: 0.58 dB) look alike.

    from cry_diffusion.fingerprint import fingerprint, same_audio
    same_audio(fingerprint(mono_a, 44100), fingerprint(mono_b, 16000))
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.fft

BANDS_HZ = tuple(np.geomspace(150, 4000, 25))  # edges of 24 bands, a quarter-octave or less each
FRAME_SECONDS = 0.05
SECONDS = 30.0  # only the first 30 s are fingerprinted: with the duration check, enough to tell recordings apart
FLOOR_DB = -60.0
THRESHOLD_DB = 1.0  # 2.3x the farthest re-encode measured, a fifth of the closest distinct pair
SHIFTS = 2  # frames of misalignment tried either way (100 ms)


def fingerprint(mono: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mono audio (its first SECONDS are used) -> [frames, 24] float32 band energies in dB below the loudest cell."""
    n = int(round(FRAME_SECONDS * sample_rate))
    mono = np.asarray(mono, np.float32)[: int(SECONDS * sample_rate)]
    frames = len(mono) // n
    if frames == 0:
        return np.zeros((0, len(BANDS_HZ) - 1), np.float32)
    window, band_sums = _frame_plan(n, sample_rate)
    # in float32, and the bands summed by one matrix product: ingest fingerprints every file, and float64 FFTs
    # and per-band masks cost more than its decoding did; the dB values move by less than 1e-4
    spectrum = scipy.fft.rfft(mono[: frames * n].reshape(frames, n) * window, axis=1)
    bands = (spectrum.real**2 + spectrum.imag**2) @ band_sums
    db = 10 * np.log10(bands.astype(np.float64) + 1e-12)
    return np.maximum(db - db.max(), FLOOR_DB).astype(np.float32)


@functools.lru_cache(maxsize=16)
def _frame_plan(n: int, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """The Hann window of a frame of n samples, and the [n // 2 + 1, 24] matrix that sums its FFT bins into bands."""
    freqs = np.fft.rfftfreq(n, 1 / sample_rate)
    bands = np.stack([(freqs >= lo) & (freqs < hi) for lo, hi in zip(BANDS_HZ[:-1], BANDS_HZ[1:])], 1)
    return np.hanning(n).astype(np.float32), bands.astype(np.float32)


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference in dB at the best alignment within SHIFTS frames (inf when too short to compare)."""
    best = np.inf
    for shift in range(-SHIFTS, SHIFTS + 1):
        x, y = (a[shift:], b) if shift >= 0 else (a, b[-shift:])
        frames = min(len(x), len(y))
        if frames >= 4:
            best = min(best, float(np.mean(np.abs(x[:frames] - y[:frames]))))
    return best


def same_duration(a: float, b: float) -> bool:
    """Durations a re-encode could give: codecs pad or trim tens of milliseconds."""
    return abs(a - b) <= max(0.1, 0.02 * max(a, b))


def same_audio(a: np.ndarray, b: np.ndarray) -> bool:
    return distance(a, b) <= THRESHOLD_DB


SUMMARY_PARTS = 8  # a fingerprint's summary for the pre-filter: its band means over 8 stretches of time


def _summary(fp: np.ndarray) -> np.ndarray:
    if len(fp) < SUMMARY_PARTS:  # too short to summarise: always compared in full
        return np.full(SUMMARY_PARTS * fp.shape[1], np.nan, np.float32)
    return np.concatenate([part.mean(0) for part in np.array_split(fp, SUMMARY_PARTS)])


def duplicates(items: list[tuple[str, float, np.ndarray]]) -> dict[str, str]:
    """(name, duration, fingerprint) in keep-first order -> {name: the earlier name it duplicates}.

    Only files of about the same duration are compared in full, and of those only the ones
    whose summaries (band means over 8 stretches, at the best of the same alignments) are
    close: at one alignment the mean gap between such means is at most the mean absolute
    difference. So thousands of clips of one duration are not millions of full comparisons
    (5,000 fingerprints of one duration: 19 s on one busy core in benchmarks/fingerprint.py, where comparing
    every pair in full once took 6 minutes).
    """
    if not items:
        return {}
    order = np.array(sorted(range(len(items)), key=lambda i: items[i][1]))
    seconds = np.array([items[i][1] for i in order], float)
    # summaries of each fingerprint with 0..SHIFTS leading frames dropped: a copy a frame or two late still lines up
    summaries = [np.stack([_summary(fp[shift:]) for _, _, fp in items]) for shift in range(SHIFTS + 1)]
    found: dict[str, str] = {}
    for pos, i in enumerate(order):
        end = int(np.searchsorted(seconds, seconds[pos] + max(0.1, 0.02 * seconds[pos]), side="right"))
        near = order[pos + 1:end]
        if not len(near):
            continue
        gap = np.min([np.mean(np.abs(late[near] - summaries[0][i]), axis=1) for late in summaries]
                     + [np.mean(np.abs(summaries[0][near] - late[i]), axis=1) for late in summaries[1:]], axis=0)
        # twice the threshold: partial-frame offsets still move the stretch means a little (re-encodes: 0.22 dB)
        for j in near[~(gap > 2 * THRESHOLD_DB)]:  # NaN (unsummarised) stays a candidate
            first, second = (i, j) if i < j else (j, i)
            if items[second][0] not in found and same_audio(items[i][2], items[j][2]):
                found[items[second][0]] = found.get(items[first][0], items[first][0])
    return found
