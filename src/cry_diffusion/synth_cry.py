"""One synthetic infant cry: the source-filter model behind the embedded corpus (cry_diffusion.synth).

    from cry_diffusion.synth_cry import synthesize_cry
    cry = synthesize_cry("pain", 3.0, sample_rate=16000, seed=7)   # float32, 48000 samples

Real cry corpora (Baby Chillanto and the like) cannot be redistributed, so the
pipeline runs end to end on cries synthesised here. The generator is a small
source-filter model whose knobs (cry_diffusion.synth_params) come from the
acoustic literature on infant cry (Golub & Corwin; Wasz-Hockert et al.;
Michelsson & Michelsson; LaGasse, Neal & Lester 2005, "Assessment of infant cry:
acoustic cry analysis and parental perception"; the Baby Chillanto papers of
Reyes-Garcia et al.). It is a stand-in with the right *shape*, not a clinical
model; cry_diffusion.synth_stats holds it to real recordings.

What a cry is made of, and how each fact becomes code:

* Temporal structure. A cry bout is a train of expiratory phonations
  ("cry units", "expirations") of roughly 0.5-1.5 s, separated by
  inspiratory pauses; in recorded clips the cry sounds only about half the
  time (pYIN voices ~50 % of frames), so the pauses here run about 0.4-1 s.
  The inspiration is usually silent apart from breath noise, but is
  sometimes voiced or turbulent: the inspiratory stridor or "whoop", a
  faint, high, noisy sound.
  -> `_timeline` lays units and pauses end to end; a pause may hold a whoop.
  The breath in the pauses is broadband, gently low-passed noise that does
  not pass the vocal tract (resonant, tract-shaped noise reads as weakly
  voiced to a pitch tracker).
* Fundamental frequency. Infant f0 is high, about 250-600 Hz (median cry
  around 400 Hz), differs a good deal from infant to infant, moves several
  semitones from unit to unit, and each unit carries a melody: most often
  rising-falling, the peak early or mid-unit, ending lower than it started;
  within a clip the f0 spans about an octave (90th/10th percentile ~2).
  -> a per-clip f0 offset (`f0_clip_st`: a split normal, longer towards low
  voices), a per-unit base f0 (log-normal, `f0_unit_st` of 1-3 semitones),
  times a skewed hump of `melody_st` (2-12) semitones, a fall of
  `end_fall_st`, plus a small tremor.
* Hyperphonation. Abrupt jumps of f0 to about 1000-2000 Hz lasting a fraction
  of a second, with a register-break-like fast transition; frequent in pain
  cries and in some pathologies.
  -> a smooth-edged segment where log f0 is pulled to a 1-2 kHz target.
* Voice breaks / dysphonation. Short stretches where phonation collapses into
  turbulent, unvoiced noise (phonation instability, typical of hypoxic
  infants; present in most cries).  -> segments of 0.04-0.35 s, about one
  per second (two in asphyxia), at most `MAX_BREAK_SHARE` of a unit, where
  the harmonics fall by `BREAK_DEPTH` and noise rises.
* Harmonic source. Glottal pulses give a harmonic series whose level falls by
  roughly 6-13 dB per octave (spectral tilt; -11 dB/octave typical here, for
  a ~2 kHz spectral centroid); tenser phonation (pain) is flatter, weak
  phonation (asphyxia) steeper.
  -> harmonic k has amplitude k ** (tilt_db_oct / 6.02).
* Vocal tract. An infant's tract is short (~7-8 cm), so its resonances sit
  much higher than an adult's: F1 about 1000-1200 Hz, F2 about 2500-3000 Hz,
  F3 about 4000-4500 Hz, with wide bandwidths.
  -> a cascade of three peaking resonators (RBJ biquads) on voice and noise.
* Perturbation. Cycle-to-cycle f0 perturbation (jitter) is about 0.5-3 %
  in cries (higher in distressed or neurologically impaired infants), and
  cycle-to-cycle amplitude perturbation (shimmer) a fraction of a dB to ~2 dB.
  -> one random draw per glottal cycle (cycle index from the running phase)
  for the period and one for the amplitude.
* Breath noise. Aspiration noise rides on every unit (the harmonic-to-noise
  ratio falls with poorer laryngeal control), and breathing is audible in the
  pauses.  -> shaped noise under the harmonics at `hnr_db`, plus a floor.

Everything is vectorised numpy (scipy.signal only for the filters), rendered
directly at the requested sample rate with harmonics faded out before Nyquist,
and deterministic: the cry's structure (units, melodies, events) depends on
(category, seed) only and is drawn in seconds, so the same seed at another
sample rate or a longer duration gives the same cry, resampled or extended;
the sample-level noise additionally depends on the sample rate.
"""

from __future__ import annotations

import zlib

import numpy as np
from scipy import signal

from .synth_params import (BREAK_DEPTH, BREATH_BAND_HZ, BREATH_DB, CATEGORIES, CATEGORY_PARAMS, CHUNK, FLOOR_DB,
                           FORMANT_BW_HZ, FORMANT_GAIN_DB, FORMANTS_HZ, HARMONIC_TOP_HZ, LEAD_S, MAX_BREAK_SHARE,
                           NOISE_BAND_HZ, NYQUIST_MARGIN, ROLLOFF_HZ)  # fmt: skip


def keyed_rng(*key: int) -> np.random.Generator:
    """A generator seeded by a tuple of ints: the same key draws the same numbers on every machine."""
    return np.random.default_rng([int(k) % 2**63 for k in key])


def category_key(category: str) -> int:
    """A category's stable number (CRC-32 of its name; Python's hash() changes per process), part of its cries' keys."""
    if category not in CATEGORY_PARAMS:
        raise ValueError(f"unknown cry category {category!r}; expected one of {CATEGORIES}")
    return zlib.crc32(category.encode())


def _timeline(p: dict, seconds: float, rng: np.random.Generator) -> dict:
    """Draw the cry's structure, in seconds, independent of the sample rate."""
    formants = [rng.uniform(*r) for r in FORMANTS_HZ]
    z = rng.normal()  # this infant's f0 offset: a split normal, longer towards low voices
    clip_f0 = p["f0_hz"] * 2 ** (z * p["f0_clip_st"][0 if z < 0 else 1] / 12)
    t = rng.uniform(*LEAD_S)
    units, whoops = [], []
    while t < seconds:
        dur = rng.uniform(*p["unit_s"])
        u = dict(
            start=t, dur=dur,
            f0=clip_f0 * 2 ** (rng.normal(0, p["f0_unit_st"]) / 12),
            depth=p["melody_st"] * rng.uniform(0.7, 1.3),
            peak=rng.uniform(*p["melody_peak"]),
            fall=p["end_fall_st"] * rng.uniform(0.5, 1.5),
            tremor=(rng.uniform(4, 8), p["tremor_st"] * rng.uniform(0.5, 1.0), rng.uniform(0, 2 * np.pi)),
            level=10 ** (rng.normal(0, p["level_db_sd"]) / 20),
            release=rng.uniform(0.06, 0.12),
            hyper=None, breaks=[],
        )
        if rng.random() < p["hyper_prob"]:
            h0 = rng.uniform(0.15, 0.6) * dur
            u["hyper"] = (h0, min(h0 + rng.uniform(0.12, 0.4), 0.92 * dur), rng.uniform(*p["hyper_hz"]),
                          rng.uniform(0.015, 0.03))  # start, end (s in unit), target Hz, transition s
        for _ in range(rng.poisson(p["breaks_per_s"] * dur)):
            b0 = rng.uniform(0.05, 0.9) * dur
            b1 = min(b0 + rng.uniform(*p["break_s"]), 0.95 * dur)
            if sum(e - s for s, e in u["breaks"]) + (b1 - b0) <= MAX_BREAK_SHARE * dur:  # phonation survives
                u["breaks"].append((b0, b1))
        units.append(u)
        t += dur
        pause = rng.uniform(*p["pause_s"])
        if rng.random() < p["whoop_prob"]:
            w0 = t + rng.uniform(0.02, 0.3) * pause
            whoops.append((w0, min(rng.uniform(0.06, 0.18), 0.6 * pause), rng.uniform(700, 1300),
                           10 ** (rng.uniform(-26, -20) / 20)))
        t += pause
    return dict(units=units, whoops=whoops, formants=formants, peak=rng.uniform(*p["peak"]))


def _window(n: int, sr: int, segs, ramp_s: float) -> np.ndarray:
    """0..1 curve, 1 inside each (start_s, end_s) segment, raised-cosine ramps of ramp_s."""
    w = np.zeros(n)
    t = np.arange(n) / sr
    for a, b in segs:
        x = np.minimum(np.clip((t - a) / ramp_s, 0, 1), np.clip((b - t) / ramp_s, 0, 1))
        w = np.maximum(w, 0.5 - 0.5 * np.cos(np.pi * x))
    return w


def _harmonics(phase: np.ndarray, f0: np.ndarray, sr: int, tilt_db_oct: float) -> np.ndarray:
    """Sum of tilted harmonics sin(k*phase), each faded out as k*f0 nears the top (no aliasing)."""
    top = min(HARMONIC_TOP_HZ, NYQUIST_MARGIN * sr / 2)
    taper = 0.08 * top
    out = np.zeros(len(phase), dtype=np.float32)
    ph = np.mod(phase, 2 * np.pi).astype(np.float32)  # wrapped: k*ph stays small, float32 is exact enough
    for s in range(0, len(phase), CHUNK):
        f, p = f0[s:s + CHUNK], ph[s:s + CHUNK]
        kmax = int(top // max(f.min(), 1.0))
        if kmax < 1:
            continue
        k = np.arange(1, kmax + 1, dtype=np.float32)[:, None]
        amp = k ** np.float32(tilt_db_oct / 6.0206) * np.clip((top - k * f.astype(np.float32)) / taper, 0, 1)
        out[s:s + CHUNK] = (amp * np.sin(k * p)).sum(axis=0)
    return out


def _peaking_sos(sr: int, freqs, bws, gains_db) -> np.ndarray:
    """RBJ peaking-EQ biquads (cascade), one per resonance below Nyquist."""
    sos = []
    for f, bw, g in zip(freqs, bws, gains_db):
        if f >= 0.45 * sr:
            continue
        A, w0 = 10 ** (g / 40), 2 * np.pi * f / sr
        alpha = np.sin(w0) / (2 * f / bw)
        b = [1 + alpha * A, -2 * np.cos(w0), 1 - alpha * A]
        a = [1 + alpha / A, -2 * np.cos(w0), 1 - alpha / A]
        sos.append(np.r_[b, a] / a[0])
    return np.array(sos) if sos else np.array([[1.0, 0, 0, 1.0, 0, 0]])


def synthesize_cry(category: str, seconds: float, sample_rate: int = 16000, seed: int = 0) -> np.ndarray:
    """float32 mono in [-1, 1], exactly round(seconds*sample_rate) samples, deterministic for (category, seconds, sample_rate, seed)."""
    key = category_key(category)
    p = CATEGORY_PARAMS[category]
    sr = int(sample_rate)
    n = int(round(seconds * sr))
    if n <= 0:
        return np.zeros(0, dtype=np.float32)
    tl = _timeline(p, n / sr, keyed_rng(seed, key))
    # sample-level randomness (jitter, shimmer, noise), drawn in the order of the steps below: reordering them
    # would change every cry of the corpus
    rng = keyed_rng(seed, key, sr, 1)
    voiced, noise_env, breath_env = _voice(tl["units"], p, n, sr, rng)
    # vocal tract: the same resonances shape voice and noise
    sos_tract = _tract_sos(tl["formants"], sr)
    v_rms = np.sqrt(np.mean(voiced.astype(np.float64) ** 2)) + 1e-12
    voiced = signal.sosfilt(sos_tract, voiced)
    tract_gain = np.sqrt(np.mean(voiced ** 2)) / v_rms
    w = _aspiration_noise(sos_tract, n, sr, rng)
    b = _breath_noise(n, sr, rng)
    y = voiced + tract_gain * (w * noise_env + b * (breath_env + 10 ** (FLOOR_DB / 20)))
    _add_whoops(y, tl["whoops"], w, tract_gain, sr)
    return _finish(y, tl["peak"], sr)


def _voice(units: list[dict], p: dict, n: int, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The voice before the tract, and the envelopes of the aspiration noise (within units) and the breath (in pauses)."""
    voiced = np.zeros(n, dtype=np.float32)
    noise_env = np.zeros(n)  # aspiration noise within units (through the tract)
    breath_env = np.full(n, 10 ** (BREATH_DB / 20))  # breath noise in pauses; units duck it
    for u in units:
        i0 = int(round(u["start"] * sr))
        m = min(int(round(u["dur"] * sr)), n - i0)
        if m <= 0:
            continue
        voiced[i0:i0 + m], noise_env[i0:i0 + m], env = _unit(u, p, m, sr, rng)
        breath_env[i0:i0 + m] *= 1 - np.minimum(1, 8 * env)
    return voiced, noise_env, breath_env


def _unit(u: dict, p: dict, m: int, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One cry unit's first m samples: its voice, its aspiration noise envelope and its loudness envelope."""
    t = np.arange(m) / sr
    x = t / u["dur"]
    hump = np.sin(np.pi * x ** (np.log(0.5) / np.log(u["peak"])))  # skewed, peaking at u["peak"]
    f0 = _f0_contour(u, t, x, hump, m, sr)
    # jitter and shimmer: one draw per glottal cycle
    cyc = (np.cumsum(f0) / sr).astype(np.int64)
    nc = cyc[-1] + 1
    f0 = f0 * (1 + p["jitter"] * np.clip(rng.standard_normal(nc), -3, 3))[cyc]
    shim = 10 ** (p["shimmer_db"] * np.clip(rng.standard_normal(nc), -3, 3) / 20)[cyc]
    phase = 2 * np.pi * np.cumsum(f0) / sr + rng.uniform(0, 2 * np.pi)
    h = _harmonics(phase, f0, sr, p["tilt_db_oct"])
    h /= np.sqrt(np.mean(h.astype(np.float64) ** 2)) + 1e-12  # unit RMS before envelopes
    # envelope: raised-cosine attack and release, louder mid-unit, per-unit level
    att = np.clip(t / p["attack_s"], 0, 1)
    rel = np.clip((u["dur"] - t) / u["release"], 0, 1)
    env = u["level"] * (0.5 - 0.5 * np.cos(np.pi * att)) * (0.5 - 0.5 * np.cos(np.pi * rel)) * (0.8 + 0.3 * hump)
    brk = _window(m, sr, u["breaks"], 0.008)
    return h * (env * shim * (1 - BREAK_DEPTH * brk)), env * (10 ** (-p["hnr_db"] / 20) + 0.5 * brk), env


def _f0_contour(u: dict, t: np.ndarray, x: np.ndarray, hump: np.ndarray, m: int, sr: int) -> np.ndarray:
    """The unit's f0 (Hz) before perturbation: the melody's hump, a fall across the unit, a slow tremor, and a
    hyperphonation jump where the unit has one."""
    rate, depth, ph0 = u["tremor"]
    st = u["depth"] * (hump - 0.5) - u["fall"] * x + depth * np.sin(2 * np.pi * rate * t + ph0)  # semitones
    logf = np.log(u["f0"]) + st * np.log(2) / 12
    if u["hyper"] is not None:
        h0, h1, fh, ramp = u["hyper"]
        w = _window(m, sr, [(h0, h1)], ramp)
        logf = (1 - w) * logf + w * (np.log(fh) + 0.5 * (hump - 0.5) * np.log(2) / 12)
    return np.exp(logf)


def _tract_sos(formants: list[float], sr: int) -> np.ndarray:
    """The infant vocal tract: its three resonances, then a gentle roll-off where the rate leaves room for it."""
    sos_tract = _peaking_sos(sr, formants, FORMANT_BW_HZ, FORMANT_GAIN_DB)
    if ROLLOFF_HZ < 0.45 * sr:
        sos_tract = np.vstack([sos_tract, signal.butter(2, ROLLOFF_HZ, fs=sr, output="sos")])
    return sos_tract


def _aspiration_noise(sos_tract: np.ndarray, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Band-limited (NOISE_BAND_HZ) white noise through the tract, unit RMS."""
    band = signal.butter(2, [NOISE_BAND_HZ[0], min(NOISE_BAND_HZ[1], 0.45 * sr)], btype="bandpass", fs=sr, output="sos")
    w = signal.sosfilt(np.vstack([band, sos_tract]), rng.standard_normal(n))
    w /= np.sqrt(np.mean(w ** 2)) + 1e-12
    return w


def _breath_noise(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Breath in the pauses and the recording floor, unit RMS: broadband, gently low-passed noise that does not
    pass the tract (resonant, tract-shaped noise reads as weakly voiced to a pitch tracker)."""
    b = signal.sosfilt(signal.butter(1, [BREATH_BAND_HZ[0], min(BREATH_BAND_HZ[1], 0.45 * sr)], btype="bandpass",
                                     fs=sr, output="sos"), rng.standard_normal(n))
    b /= np.sqrt(np.mean(b ** 2)) + 1e-12
    return b


def _add_whoops(y: np.ndarray, whoops: list[tuple], noise: np.ndarray, tract_gain: float, sr: int) -> None:
    """Inspiratory whoops into y: faint, high, rising, half tonal and half turbulent (the aspiration noise)."""
    n = len(y)
    t_all = np.arange(n) / sr
    for w0, wd, fw, lvl in whoops:
        i0, i1 = int(w0 * sr), min(int((w0 + wd) * sr), n)
        if i1 - i0 < 8:
            continue
        tt = t_all[i0:i1] - w0
        env = np.sin(np.pi * tt / wd) ** 2 * lvl * tract_gain
        f = fw * 2 ** (3 * tt / wd / 12)  # rises ~3 semitones
        tone = np.sin(2 * np.pi * np.cumsum(f) / sr) if fw < 0.45 * sr else 0.0
        y[i0:i1] += env * (0.7 * tone + noise[i0:i1])


def _finish(y: np.ndarray, peak: float, sr: int) -> np.ndarray:
    """Fade the clip edges (a unit may be cut), then normalise to this clip's peak: float32 in [-1, 1]."""
    n = len(y)
    fade = min(int(0.01 * sr), n // 2)
    if fade > 0:
        r = 0.5 - 0.5 * np.cos(np.pi * np.arange(fade) / fade)
        y[:fade] *= r
        y[n - fade:] *= r[::-1]
    top = np.max(np.abs(y))
    if top > 0:
        y *= peak / top
    return np.clip(y, -1.0, 1.0).astype(np.float32)
