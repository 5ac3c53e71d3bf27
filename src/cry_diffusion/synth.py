"""Synthetic infant cries: the project's embedded, shippable corpus.

Real cry corpora (Baby Chillanto and the like) cannot be redistributed, so the
pipeline runs end to end on cries synthesised here. The generator is a small
source-filter model whose knobs come from the acoustic literature on infant
cry (Golub & Corwin; Wasz-Hockert et al.; Michelsson & Michelsson; LaGasse,
Neal & Lester 2005, "Assessment of infant cry: acoustic cry analysis and
parental perception"; the Baby Chillanto papers of Reyes-Garcia et al.).
It is a stand-in with the right *shape*, not a clinical model.

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

Five categories mirror Baby Chillanto's five folders. Their differences follow
what the literature reports, exaggerated enough to be measurable on short
clips: pain cries are higher, longer, with sharp onsets and frequent
hyperphonation; hunger cries are rhythmic, with medium f0 and regular pauses;
asphyxia cries are quieter, noisier, more perturbed, with weaker harmonics and
many voice breaks; cries of deaf infants are flatter in melody and lower in
f0 range; normal cries are the typical ~450 Hz rising-falling pattern.

The knobs are held to real recordings: pYIN (fmin 150, fmax 1500 Hz, 1024 /
160-sample frames at 16 kHz) on a public phone-app cry corpus (457 clean
clips, 16 kHz originals) gives a median f0 of 400 Hz (10th-90th percentile of
clip medians 233-511 Hz), 50 % of frames voiced, a clip's f0 90th/10th
percentile ratio of 1.99 (median over clips) and a spectral centroid of
2065 Hz; the corpus synthesised here measured 437 Hz (357-568), 82 % voiced,
1.27 and 2244 Hz before it was tuned to them. `PHONE_APP_STATS` holds those
figures, `corpus_statistics` measures a set of clips the same way,
benchmarks/corpus_stats.py prints both side by side, and
tests/test_synth.py::test_corpus_statistics_match_phone_app holds the
embedded corpus within bands around them.

Everything is vectorised numpy (scipy.signal only for the filters), rendered
directly at the requested sample rate with harmonics faded out before Nyquist,
and deterministic: the cry's structure (units, melodies, events) depends on
(category, seed) only and is drawn in seconds, so the same seed at another
sample rate or a longer duration gives the same cry, resampled or extended;
the sample-level noise additionally depends on the sample rate.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal

from cry_diffusion.atomic import atomic_path

# ----------------------------------------------------------------------------------------------
# category parameter table: one dict per category, every knob commented once (on "normal")
CATEGORY_PARAMS: dict[str, dict] = {
    "normal": dict(
        f0_hz=450.0,            # median per-unit base f0 (Hz)
        f0_clip_st=(3.5, 1.0),  # SD of a clip's (an infant's) f0 offset below / above the median (semitones)
        f0_unit_st=3.0,         # SD of base f0 between units (semitones)
        melody_st=10.0,         # depth of the rising-falling hump within a unit (semitones)
        melody_peak=(0.35, 0.5),  # where in the unit the f0 peak sits (fraction of unit)
        end_fall_st=3.0,        # extra fall from unit start to unit end (semitones)
        tremor_st=0.3,          # slow 4-8 Hz f0 wobble depth (semitones)
        unit_s=(0.6, 1.2),      # expiration (cry unit) duration range (s)
        pause_s=(0.45, 1.0),    # inspiratory pause duration range (s)
        whoop_prob=0.2,         # chance a pause carries an inspiratory stridor ("whoop")
        hyper_prob=0.1,         # chance a unit contains a hyperphonation jump
        hyper_hz=(1000, 1600),  # hyperphonation target f0 range (Hz)
        breaks_per_s=1.0,       # rate of voice breaks (noisy unvoiced stretches) within units
        break_s=(0.06, 0.3),    # voice break duration range (s)
        jitter=0.01,            # SD of per-cycle relative f0 perturbation
        shimmer_db=0.5,         # SD of per-cycle amplitude perturbation (dB)
        tilt_db_oct=-11.0,      # source spectral tilt of the harmonics (dB/octave)
        hnr_db=20.0,            # harmonic-to-aspiration-noise ratio within units (dB)
        attack_s=0.05,          # unit onset (raised-cosine attack) time (s)
        level_db_sd=1.5,        # SD of unit-to-unit level (dB)
        peak=(0.75, 0.9),       # per-clip output peak range (linear)
    ),
    "hunger": dict(
        f0_hz=430.0, f0_clip_st=(3.5, 1.0), f0_unit_st=3.0, melody_st=9.0, melody_peak=(0.4, 0.5), end_fall_st=2.5,
        tremor_st=0.2, unit_s=(0.55, 0.7), pause_s=(0.6, 0.7), whoop_prob=0.15,
        hyper_prob=0.03, hyper_hz=(1000, 1400), breaks_per_s=0.8, break_s=(0.06, 0.3), jitter=0.008,
        shimmer_db=0.4, tilt_db_oct=-11.0, hnr_db=22.0, attack_s=0.06, level_db_sd=0.8,
        peak=(0.75, 0.9),
    ),
    "pain": dict(
        f0_hz=570.0, f0_clip_st=(3.5, 1.0), f0_unit_st=1.5, melody_st=7.0, melody_peak=(0.15, 0.3), end_fall_st=3.0,
        tremor_st=0.4, unit_s=(1.0, 1.5), pause_s=(0.6, 1.0), whoop_prob=0.35,
        hyper_prob=0.6, hyper_hz=(1200, 2000), breaks_per_s=0.4, break_s=(0.04, 0.15), jitter=0.015,
        shimmer_db=0.7, tilt_db_oct=-6.5, hnr_db=17.0, attack_s=0.012, level_db_sd=1.5,
        peak=(0.8, 0.9),
    ),
    "deaf": dict(
        f0_hz=310.0, f0_clip_st=(3.5, 1.0), f0_unit_st=1.0, melody_st=2.0, melody_peak=(0.4, 0.6), end_fall_st=1.0,
        tremor_st=0.15, unit_s=(0.6, 1.2), pause_s=(0.45, 1.0), whoop_prob=0.15,
        hyper_prob=0.03, hyper_hz=(1000, 1300), breaks_per_s=1.0, break_s=(0.06, 0.3), jitter=0.012,
        shimmer_db=0.6, tilt_db_oct=-12.0, hnr_db=18.0, attack_s=0.05, level_db_sd=1.5,
        peak=(0.7, 0.85),
    ),
    "asphyxia": dict(
        f0_hz=430.0, f0_clip_st=(3.5, 1.0), f0_unit_st=2.5, melody_st=11.0, melody_peak=(0.3, 0.6), end_fall_st=2.5,
        tremor_st=0.6, unit_s=(0.45, 1.0), pause_s=(0.4, 1.0), whoop_prob=0.3,
        hyper_prob=0.1, hyper_hz=(1000, 1800), breaks_per_s=2.0, break_s=(0.06, 0.35), jitter=0.03,
        shimmer_db=1.5, tilt_db_oct=-13.0, hnr_db=9.0, attack_s=0.08, level_db_sd=3.0,
        peak=(0.5, 0.62),
    ),
}
CATEGORIES: tuple[str, ...] = ("asphyxia", "deaf", "hunger", "normal", "pain")

# shared vocal-tract and rendering constants (infant tract; same for all categories)
FORMANTS_HZ = ((1000, 1200), (2500, 3000), (4000, 4500))  # F1, F2, F3 ranges (Hz)
FORMANT_BW_HZ = (250.0, 350.0, 450.0)  # resonance bandwidths (infant tracts are lossy: wide)
FORMANT_GAIN_DB = (12.0, 9.0, 7.0)     # peak boost of each resonance over the source
HARMONIC_TOP_HZ = 11_000.0             # no harmonic above this (cries carry little energy higher)
ROLLOFF_HZ = 7_000.0                   # gentle 2nd-order low-pass on voice and noise above this (if < 0.45*sr)
NYQUIST_MARGIN = 0.9                   # ...nor above this fraction of Nyquist (anti-aliasing)
NOISE_BAND_HZ = (250.0, 4000.0)        # band of the aspiration/breath noise (before the tract)
BREATH_BAND_HZ = (100.0, 2500.0)       # band (1st order) of the breath noise in pauses and of the floor
BREATH_DB = -32.0                      # breath noise in pauses, relative to unit level
MAX_BREAK_SHARE = 0.4                  # voice breaks cover at most this share of a unit (drawn ones past it are dropped)
BREAK_DEPTH = 0.99                     # how far the harmonics fall inside a voice break (1 = silent)
FLOOR_DB = -60.0                       # recording noise floor, relative to unit level
LEAD_S = (0.03, 0.2)                   # quiet before the first unit (s)
CHUNK = 4096                           # samples per chunk of harmonic synthesis (bounds memory)


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng([int(k) % 2**63 for k in key])


def _category_key(category: str) -> int:
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
    key = _category_key(category)
    p = CATEGORY_PARAMS[category]
    sr = int(sample_rate)
    n = int(round(seconds * sr))
    if n <= 0:
        return np.zeros(0, dtype=np.float32)
    tl = _timeline(p, n / sr, _rng(seed, key))
    rng = _rng(seed, key, sr, 1)  # sample-level randomness (jitter, shimmer, noise)

    voiced = np.zeros(n, dtype=np.float32)
    noise_env = np.zeros(n)  # aspiration noise within units (through the tract)
    breath_env = np.full(n, 10 ** (BREATH_DB / 20))  # breath noise in pauses; units duck it
    for u in tl["units"]:
        i0 = int(round(u["start"] * sr))
        m = min(int(round(u["dur"] * sr)), n - i0)
        if m <= 0:
            continue
        t = np.arange(m) / sr
        x = t / u["dur"]
        # melody: skewed hump peaking at u["peak"], a fall across the unit, a slow tremor (semitones)
        hump = np.sin(np.pi * x ** (np.log(0.5) / np.log(u["peak"])))
        rate, depth, ph0 = u["tremor"]
        st = u["depth"] * (hump - 0.5) - u["fall"] * x + depth * np.sin(2 * np.pi * rate * t + ph0)
        logf = np.log(u["f0"]) + st * np.log(2) / 12
        if u["hyper"] is not None:
            h0, h1, fh, ramp = u["hyper"]
            w = _window(m, sr, [(h0, h1)], ramp)
            logf = (1 - w) * logf + w * (np.log(fh) + 0.5 * (hump - 0.5) * np.log(2) / 12)
        f0 = np.exp(logf)
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
        voiced[i0:i0 + m] = h * (env * shim * (1 - BREAK_DEPTH * brk))
        noise_env[i0:i0 + m] = env * (10 ** (-p["hnr_db"] / 20) + 0.5 * brk)
        breath_env[i0:i0 + m] *= 1 - np.minimum(1, 8 * env)

    # vocal tract: the same resonances shape voice and noise
    sos_tract = _peaking_sos(sr, tl["formants"], FORMANT_BW_HZ, FORMANT_GAIN_DB)
    if ROLLOFF_HZ < 0.45 * sr:
        sos_tract = np.vstack([sos_tract, signal.butter(2, ROLLOFF_HZ, fs=sr, output="sos")])
    v_rms = np.sqrt(np.mean(voiced.astype(np.float64) ** 2)) + 1e-12
    voiced = signal.sosfilt(sos_tract, voiced)
    tract_gain = np.sqrt(np.mean(voiced ** 2)) / v_rms
    # aspiration/breath noise: band-limited (NOISE_BAND_HZ) white noise through the tract, unit RMS
    band = signal.butter(2, [NOISE_BAND_HZ[0], min(NOISE_BAND_HZ[1], 0.45 * sr)], btype="bandpass", fs=sr, output="sos")
    w = signal.sosfilt(np.vstack([band, sos_tract]), rng.standard_normal(n))
    w /= np.sqrt(np.mean(w ** 2)) + 1e-12
    # breath in the pauses and the recording floor: broadband, gently low-passed noise that does not
    # pass the tract (resonant, tract-shaped noise reads as weakly voiced to a pitch tracker)
    b = signal.sosfilt(signal.butter(1, [BREATH_BAND_HZ[0], min(BREATH_BAND_HZ[1], 0.45 * sr)], btype="bandpass",
                                     fs=sr, output="sos"), rng.standard_normal(n))
    b /= np.sqrt(np.mean(b ** 2)) + 1e-12
    y = voiced + tract_gain * (w * noise_env + b * (breath_env + 10 ** (FLOOR_DB / 20)))
    # inspiratory whoops: faint, high, rising, half tonal and half turbulent
    t_all = np.arange(n) / sr
    for w0, wd, fw, lvl in tl["whoops"]:
        i0, i1 = int(w0 * sr), min(int((w0 + wd) * sr), n)
        if i1 - i0 < 8:
            continue
        tt = t_all[i0:i1] - w0
        env = np.sin(np.pi * tt / wd) ** 2 * lvl * tract_gain
        f = fw * 2 ** (3 * tt / wd / 12)  # rises ~3 semitones
        tone = np.sin(2 * np.pi * np.cumsum(f) / sr) if fw < 0.45 * sr else 0.0
        y[i0:i1] += env * (0.7 * tone + w[i0:i1])

    # fade the clip edges (a unit may be cut), then normalise to this clip's peak
    fade = min(int(0.01 * sr), n // 2)
    if fade > 0:
        r = 0.5 - 0.5 * np.cos(np.pi * np.arange(fade) / fade)
        y[:fade] *= r
        y[n - fade:] *= r[::-1]
    peak = np.max(np.abs(y))
    if peak > 0:
        y *= tl["peak"] / peak
    return np.clip(y, -1.0, 1.0).astype(np.float32)


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
        key = _category_key(cat)
        rng = _rng(seed, key, 2)
        durs = rng.uniform(seconds[0], seconds[1], clips_per_category)
        n_stereo = int(round(stereo_fraction * clips_per_category))
        stereo = set(rng.permutation(clips_per_category)[:n_stereo].tolist())
        for k in range(clips_per_category):
            sr = int(sample_rates[(k + ci) % len(sample_rates)])
            x = synthesize_cry(cat, float(durs[k]), sr, seed=int(_rng(seed, key, 3, k).integers(2**31)))
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


# ----------------------------------------------------------------------------------------------
# corpus statistics, held to a real phone-app cry corpus (see the module docstring)

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


def embedded_clips(clips_per_category: int = 12, seconds: tuple[float, float] = (2.0, 4.0), seed: int = 0,
                   sample_rate: int = 16000, categories: tuple[str, ...] = CATEGORIES) -> list[np.ndarray]:
    """The cries `write_corpus` would write for these arguments (same durations and seeds), mono at `sample_rate`."""
    clips = []
    for cat in categories:
        key = _category_key(cat)
        durs = _rng(seed, key, 2).uniform(seconds[0], seconds[1], clips_per_category)
        for k in range(clips_per_category):
            clips.append(synthesize_cry(cat, float(durs[k]), sample_rate, seed=int(_rng(seed, key, 3, k).integers(2**31))))
    return clips


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
