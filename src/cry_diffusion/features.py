"""Acoustic features of a cry, computed the same way on real and generated audio.

Per clip: f0 mean and range and the voiced fraction, the harmonics-to-noise ratio
(both from one normalised autocorrelation per frame, as Praat does), spectral
centroid and flatness, the RMS envelope's level and spread, and the skew of its
frame-to-frame changes (cries start abruptly and fade: positive; played backwards:
negative, which no time-pooled embedding sees). Real and generated clips are compared
feature by feature with the Wasserstein-1 distance.

    from cry_diffusion.features import clip_features, wasserstein
    table = clip_features(audio)               # {"f0_mean_hz": [..per clip..], ...}
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import SAMPLE_RATE
from .params import Params


@dataclass(frozen=True)
class FeatureParams(Params):
    frame_ms: float = 40.0  # analysis frame: two periods of the lowest f0
    hop_ms: float = 10.0
    f0_min: float = 150.0  # Hz; infant cry f0 sits around 300-600 Hz, with dips and squeals beyond
    f0_max: float = 1500.0
    voicing: float = 0.45  # autocorrelation peak above which a frame is voiced (Praat's default)
    silence_db: float = 40.0  # frames this far below the clip's loudest frame are ignored


# Name, unit and axis label of every feature: the order of tables and figures.
FEATURES = {
    "f0_mean_hz": "f0 mean (Hz)",
    "f0_range_hz": "f0 range, 10th-90th pct (Hz)",
    "voiced_fraction": "voiced fraction",
    "hnr_db": "harmonics-to-noise ratio (dB)",
    "centroid_hz": "spectral centroid (Hz)",
    "flatness": "spectral flatness",
    "rms_mean_db": "RMS level (dBFS)",
    "rms_std_db": "RMS envelope spread (dB)",
    "onset_skew": "level-change skew (onsets +)",
}


def _frames(x: np.ndarray, p: FeatureParams) -> np.ndarray:
    n, hop = round(p.frame_ms * SAMPLE_RATE / 1000), round(p.hop_ms * SAMPLE_RATE / 1000)
    x = np.pad(x, (0, max(0, n - len(x))))
    frames = np.lib.stride_tricks.sliding_window_view(x, n)[::hop]
    return frames - frames.mean(1, keepdims=True)


def _autocorrelation(frames: np.ndarray) -> np.ndarray:
    """Normalised, unbiased: a periodic frame scores ~1 at its period, white noise ~0."""
    n = frames.shape[1]
    spec = np.fft.rfft(frames, 2 * n, axis=1)
    r = np.fft.irfft(np.abs(spec) ** 2, axis=1)[:, :n]
    return r / np.maximum(r[:, :1], 1e-12) * n / (n - np.arange(n))


def _pitch(r: np.ndarray, p: FeatureParams) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: (f0 in Hz, autocorrelation peak). The first lag near the best is taken: no octave-down errors."""
    lo, hi = int(SAMPLE_RATE / p.f0_max), int(SAMPLE_RATE / p.f0_min) + 1
    band = r[:, lo:hi]
    best = band.max(1)
    lag = np.argmax(band >= 0.9 * best[:, None], axis=1)
    while True:  # climb to the local maximum from the first lag near the best
        up = (lag + 1 < band.shape[1]) & (band[np.arange(len(lag)), np.minimum(lag + 1, band.shape[1] - 1)] > band[np.arange(len(lag)), lag])
        if not up.any():
            break
        lag = lag + up
    i = np.arange(len(lag))
    left, mid, right = band[i, np.maximum(lag - 1, 0)], band[i, lag], band[i, np.minimum(lag + 1, band.shape[1] - 1)]
    denom = left - 2 * mid + right
    shift = np.where(np.abs(denom) > 1e-12, 0.5 * (left - right) / np.where(denom == 0, 1, denom), 0.0)
    return SAMPLE_RATE / (lo + lag + np.clip(shift, -0.5, 0.5)), mid


def _levels(frames: np.ndarray, p: FeatureParams) -> tuple[np.ndarray, np.ndarray]:
    """(each frame's RMS in dBFS, which frames are sounding: within silence_db of the loudest)."""
    rms_db = 20 * np.log10(np.maximum(np.sqrt((frames**2).mean(1)), 1e-5))
    return rms_db, rms_db > max(rms_db.max() - p.silence_db, -90.0)


def level_db(audio: np.ndarray, p: FeatureParams = FeatureParams()) -> np.ndarray:
    """Each clip's level [N]: the mean dBFS of its sounding frames (the rms_mean_db feature, without the pitch work).

    Gated, so the pauses between cry units don't make a sparse cry read quiet; the level
    that evaluation brings clips to before its loudness-normalised distances.
    """
    out = []
    for x in np.atleast_2d(audio):
        rms_db, loud = _levels(_frames(np.asarray(x, np.float64), p), p)
        out.append(rms_db[loud].mean() if loud.any() else rms_db.mean())
    return np.array(out, np.float64)


def features_of(x: np.ndarray, p: FeatureParams = FeatureParams()) -> dict[str, float]:
    """The features of one clip (NaN f0 values for a clip with no voiced frame)."""
    frames = _frames(np.asarray(x, np.float64), p)
    rms_db, loud = _levels(frames, p)
    if not loud.any():  # digital silence (a collapsed model makes it): level only, the rest undefined
        return {name: np.nan for name in FEATURES} | {"voiced_fraction": 0.0, "rms_mean_db": float(rms_db.mean()), "rms_std_db": 0.0}
    r = _autocorrelation(frames[loud])
    f0, peak = _pitch(r, p)
    voiced = peak > p.voicing
    # HNR over every sounding frame, not only voiced ones, so noise gets a (low) value too
    peak = np.clip(peak, 1e-3, 0.999)
    spectrum = np.abs(np.fft.rfft(frames[loud] * np.hanning(frames.shape[1]), axis=1)) ** 2 + 1e-12
    freqs = np.fft.rfftfreq(frames.shape[1], 1 / SAMPLE_RATE)
    voiced_f0 = f0[voiced]
    steps = np.diff(rms_db)[(loud[1:] | loud[:-1])]  # level changes into, within and out of sounding stretches
    return {
        "f0_mean_hz": float(voiced_f0.mean()) if voiced.any() else np.nan,
        "f0_range_hz": float(np.subtract(*np.percentile(voiced_f0, [90, 10]))) if voiced.any() else np.nan,
        "voiced_fraction": float(voiced.mean()),
        "hnr_db": float(np.mean(10 * np.log10(peak / (1 - peak)))),
        "centroid_hz": float(np.mean((spectrum * freqs).sum(1) / spectrum.sum(1))),
        "flatness": float(np.mean(np.exp(np.log(spectrum).mean(1)) / spectrum.mean(1))),
        "rms_mean_db": float(rms_db[loud].mean()),
        "rms_std_db": float(rms_db[loud].std()),
        "onset_skew": skewness(steps) if len(steps) > 2 and steps.std() > 1e-9 else np.nan,
    }


def skewness(x: np.ndarray) -> float:
    """The third standardised moment (scipy.stats.skew's default, which is biased): its import costs more than this."""
    centred = x - x.mean()
    return float(np.mean(centred**3) / np.mean(centred**2) ** 1.5)


def clip_features(audio: np.ndarray, p: FeatureParams = FeatureParams()) -> dict[str, list[float]]:
    """Audio [N, samples] -> {feature: N values} (None where undefined, so the values go straight to JSON)."""
    rows = [features_of(x, p) for x in np.atleast_2d(audio)]
    return {name: [row[name] if np.isfinite(row[name]) else None for row in rows] for name in FEATURES}


def finite(values) -> np.ndarray:
    """One feature's values as floats, None and NaN (an unvoiced clip's f0, say) left out."""
    x = np.array([np.nan if v is None else v for v in values], float)
    return x[np.isfinite(x)]


def wasserstein(a, b) -> float | None:
    """W1 between two samples of one feature, NaNs dropped; None when either side has no value."""
    a, b = finite(a), finite(b)
    return float(wasserstein_weighted(a, b, np.ones((1, len(a))), np.ones((1, len(b))))[0]) if len(a) and len(b) else None


def wasserstein_weighted(a: np.ndarray, b: np.ndarray, wa: np.ndarray, wb: np.ndarray) -> np.ndarray:
    """W1 between two samples under J weightings of their values at once: [J] from wa [J, len(a)], wb [J, len(b)].

    A bootstrap's counts or a jackknife's 0/1 weights; the area between the two weighted CDFs,
    over the gaps of the pooled, sorted values (what scipy's wasserstein_distance does for one).
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    grid = np.sort(np.concatenate([a, b]))
    cdfs = []
    for x, w in ((a, np.asarray(wa, float)), (b, np.asarray(wb, float))):
        order = np.argsort(x)
        cum = np.concatenate([np.zeros((len(w), 1)), np.cumsum(w[:, order], 1)], 1)
        cdfs.append(cum[:, np.searchsorted(x[order], grid[:-1], side="right")] / cum[:, -1:])
    return (np.abs(cdfs[0] - cdfs[1]) * np.diff(grid)).sum(1)
