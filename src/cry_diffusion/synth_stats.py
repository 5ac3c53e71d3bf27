"""The embedded corpus held to real recordings: pYIN and centroid statistics of a set of clips, and a real corpus's.

The synthesiser's knobs (cry_diffusion.synth_params) are held to real recordings: pYIN (fmin 150,
fmax 1500 Hz, 1024 / 160-sample frames at 16 kHz) on a public phone-app cry corpus (457 clean
clips, 16 kHz originals) gives a median f0 of 400 Hz (10th-90th percentile of clip medians
233-511 Hz), 50 % of frames voiced, a clip's f0 90th/10th percentile ratio of 1.99 (median over
clips) and a spectral centroid of 2065 Hz; the corpus synthesised here measured 437 Hz (357-568),
82 % voiced, 1.27 and 2244 Hz before it was tuned to them. `PHONE_APP_STATS` holds those figures,
`corpus_statistics` measures a set of clips the same way, benchmarks/corpus_stats.py prints both
side by side, and tests/test_synth.py::test_corpus_statistics_match_phone_app holds the embedded
corpus within bands around them:

    from cry_diffusion import synth, synth_stats
    synth_stats.corpus_statistics(synth.embedded_clips())   # keys as synth_stats.PHONE_APP_STATS
"""

from __future__ import annotations

import numpy as np

#: pYIN statistics of a public phone-app cry corpus (457 clean clips, 16 kHz originals), measured
#: exactly as `corpus_statistics` measures: the figures the synthesiser's knobs are held to.
PHONE_APP_STATS: dict[str, float] = dict(
    median_f0_hz=400.0,     # median over clips of the clip's median voiced f0
    f0_p10_hz=233.0,        # 10th percentile of clip medians
    f0_p90_hz=511.0,        # 90th percentile of clip medians
    voiced_fraction=0.50,   # mean over clips of the share of pYIN frames voiced
    f0_ratio=1.99,          # median over clips of (90th / 10th percentile of the clip's voiced f0)
    centroid_hz=2065.0,     # mean over clips of the clip's mean spectral centroid
)


def clip_statistics(y, sample_rate: int = 16000) -> dict[str, float]:
    """One clip's pYIN and centroid figures: voiced fraction, median voiced f0, f0 p90/p10 ratio, mean centroid.

    librosa.pyin(fmin=150, fmax=1500, frame_length=1024, hop_length=160) gives the voiced fraction
    (voiced frames / all frames), the median voiced f0 and the 90th/10th percentile ratio of the voiced
    f0 (both NaN with no voiced frame); librosa.feature.spectral_centroid (defaults), averaged over
    frames, gives the centroid.
    """
    import librosa

    y = np.asarray(y, dtype=np.float32)
    f0, voiced, _ = librosa.pyin(y, fmin=150, fmax=1500, sr=sample_rate, frame_length=1024, hop_length=160)
    v = f0[voiced & np.isfinite(f0)]
    p10, p90 = np.percentile(v, [10, 90]) if len(v) else (np.nan, np.nan)
    return dict(voiced_fraction=float(np.mean(voiced)), median_f0_hz=float(np.median(v)) if len(v) else float("nan"),
                f0_ratio=float(p90 / p10), centroid_hz=float(np.mean(librosa.feature.spectral_centroid(y=y, sr=sample_rate)[0])))


def summarise_statistics(rows) -> dict[str, float]:
    """Corpus figures, with the keys of `PHONE_APP_STATS`, from `clip_statistics` rows.

    Median and 10th/90th percentiles of the clip medians, mean voiced fraction, median f0 ratio, mean
    centroid. A clip with no voiced frame counts only in voicing and centroid.
    """
    rows = list(rows)
    med = np.array([r["median_f0_hz"] for r in rows])
    med = med[np.isfinite(med)]
    ratio = np.array([r["f0_ratio"] for r in rows])
    ratio = ratio[np.isfinite(ratio)]
    nan = float("nan")
    p10, p90 = np.percentile(med, [10, 90]) if len(med) else (nan, nan)
    return dict(
        median_f0_hz=float(np.median(med)) if len(med) else nan, f0_p10_hz=float(p10), f0_p90_hz=float(p90),
        voiced_fraction=float(np.mean([r["voiced_fraction"] for r in rows])),
        f0_ratio=float(np.median(ratio)) if len(ratio) else nan,
        centroid_hz=float(np.mean([r["centroid_hz"] for r in rows])),
    )


def corpus_statistics(clips, sample_rate: int = 16000) -> dict[str, float]:
    """The figures of `PHONE_APP_STATS` for a set of mono clips: `summarise_statistics` of each clip's `clip_statistics`."""
    return summarise_statistics(clip_statistics(y, sample_rate) for y in clips)
