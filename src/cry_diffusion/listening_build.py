"""Building a listening study: its stimuli under opaque names, loudness-matched, its plan, its page.

The study's folder is laid out in cry_diffusion.listening; the pipeline's `listening` rule calls

    from cry_diffusion import listening_build
    from cry_diffusion.listening_plan import StudyParams
    plan = listening_build.build(folder, real, real_categories, {"steps-200": (audio, labels)}, StudyParams(), "embedded")
    listening_build.loudness(clip)            # integrated loudness in LUFS (ITU-R BS.1770-4)
"""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path

import numpy as np

from . import SAMPLE_RATE
from .atomic import write_text
from .audio import write_wav
from .evaluate import noise_like, tone_sweeps
from .listening_plan import KINDS, MOS_SCALE, StudyError, StudyParams, new_token, plan_id, public_trial, slot_trials
from .listening_store import check_answers_fit, held_plan


def k_weighting(rate: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """ITU-R BS.1770's K-weighting at any sample rate: its high shelf and high pass as (b, a) biquads.

    The standard gives coefficients at 48 kHz only; these are the analogue prototypes fitted to them
    (shelf: 1681.97 Hz, +4.0 dB, Q 0.7072; high pass: 38.14 Hz, Q 0.5003), mapped by the bilinear transform.
    """
    k = np.tan(np.pi * 1681.974450955533 / rate)
    q, gain = 0.7071752369554196, 10 ** (3.999843853973347 / 20)
    mid = gain**0.4996667741545416  # the shelf's gain at its centre
    den = 1 + k / q + k * k
    shelf = (np.array([gain + mid * k / q + k * k, 2 * (k * k - gain), gain - mid * k / q + k * k]) / den,
             np.array([1.0, 2 * (k * k - 1) / den, (1 - k / q + k * k) / den]))  # fmt: skip
    k, q = np.tan(np.pi * 38.13547087602444 / rate), 0.5003270373238773
    den = 1 + k / q + k * k
    highpass = np.array([1.0, -2.0, 1.0]), np.array([1.0, 2 * (k * k - 1) / den, (1 - k / q + k * k) / den])
    return [shelf, highpass]


def loudness(audio: np.ndarray, rate: int = SAMPLE_RATE) -> float:
    """Integrated loudness in LUFS (ITU-R BS.1770-4: K-weighting, 400 ms blocks with 75% overlap, absolute
    gate at -70 LUFS, relative gate 10 LU below). A clip shorter than a block is one block. -inf when silent."""
    from scipy.signal import lfilter

    x = np.asarray(audio, np.float64)
    for b, a in k_weighting(rate):
        x = lfilter(b, a, x)
    block, hop = int(0.4 * rate), int(0.1 * rate)
    starts = range(0, max(1, len(x) - block + 1), hop) if len(x) >= block else [0]
    power = np.array([np.mean(x[s : s + block] ** 2) for s in starts])
    lufs = -0.691 + 10 * np.log10(np.maximum(power, 1e-20))
    kept = power[lufs > -70]
    if not kept.size:
        return float("-inf")
    relative = -0.691 + 10 * np.log10(kept.mean()) - 10
    kept = power[(lufs > -70) & (lufs > relative)]
    return float(-0.691 + 10 * np.log10(kept.mean()))


PEAK = 0.98  # a gain that would clip stops here; the stimulus is then quieter than the target, and the plan says so
MAX_GAIN_DB = 40.0  # a near-silent clip is raised at most this much


def match_loudness(audio: np.ndarray, target: float) -> tuple[np.ndarray, dict]:
    """The clip at `target` LUFS, or as near as its peak allows; with what was measured and done."""
    before = loudness(audio)
    gain_db = 0.0 if not np.isfinite(before) else min(target - before, MAX_GAIN_DB)
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    limited = peak > 0 and peak * 10 ** (gain_db / 20) > PEAK
    if limited:
        gain_db = 20 * np.log10(PEAK / peak)
    out = (audio * 10 ** (gain_db / 20)).astype(np.float32)
    return out, {"lufs_before": _finite(before), "gain_db": round(float(gain_db), 3), "peak_limited": bool(limited),
                 "lufs": _finite(loudness(out))}  # fmt: skip


def _finite(x: float) -> float | None:
    return round(float(x), 3) if np.isfinite(x) else None


def _crop(clips: np.ndarray, length: int, usable: list[int], rng) -> np.ndarray:
    """Each clip cut to `length` samples at a random offset inside its usable (unpadded) part."""
    out = np.zeros((len(clips), length), np.float32)
    for i, clip in enumerate(clips):
        room = max(0, min(usable[i], clip.shape[-1]) - length)
        start = int(rng.integers(0, room + 1))
        piece = np.asarray(clip[start : start + length], np.float32)
        out[i, : len(piece)] = piece
    return out


def build(folder: str | Path, real: np.ndarray, real_categories: list[str], generated: dict[str, tuple[np.ndarray, list | None]],
          p: StudyParams = StudyParams(), dataset: str = "", real_usable: list[int] | None = None,
          real_source: str = "held-out") -> dict:  # fmt: skip
    """Write a study into `folder`: stimuli, plan.json, trials.js, index.html. Returns the plan.

    real: real clips [N, samples] (held-out segments); real_categories: theirs ('' when none);
    generated: system name ("steps-200") -> (clips [M, samples], intended categories or None);
    real_usable: samples of each real clip before its zero padding.

    What a rater sees is drawn from `secrets`, never from the seed: stimulus names, rater
    tokens, and the key (`order_key`) that orders each rater's trials and sides each 2AFC
    pair. plan.json records all of it, so plan.json is the key; a study built twice shares no
    name and no token. The seed still picks and crops the real clips and makes the anchors. A
    rebuild in a folder whose database holds a plan reuses that plan's names, tokens and key,
    so the same inputs give the same plan, byte for byte, once a study is running.
    """
    folder = Path(folder)
    unknown = set(p.kinds) - set(KINDS)
    if unknown:
        raise StudyError(f"{folder}: unknown trial kinds {sorted(unknown)}; the kinds are {list(KINDS)}")
    if not generated or len(real) == 0:
        raise StudyError(f"{folder}: a study needs real clips and at least one generated system")
    clips, length = _clips(real, real_categories, generated, p, real_usable)
    held = held_plan(folder)  # a running study's key, kept
    stimuli = _write_stimuli(folder / "stimuli", clips, held, p)
    categories = sorted({c for c in clips["real"][1] if c})
    plan = {
        "dataset": dataset,
        "params": p.to_dict(),
        "kinds": [k for k in p.kinds if k != "category" or len(categories) >= 2],
        "systems": list(generated),
        "categories": categories,
        "clip_seconds": length / SAMPLE_RATE,
        "real_source": real_source,
        "exclusion": {"failed_checks": p.exclude_failed_checks, "min_completed": p.exclude_min_completed,
                      "mos_noise_max": p.mos_noise_max},  # fmt: skip
        "order_key": (held or {}).get("order_key") or secrets.randbits(63),
        "stimuli": stimuli,
    }
    held_raters = (held or {}).get("slots", [])
    tokens = held_raters[: p.raters] + [new_token() for _ in range(p.raters - len(held_raters))]
    plan["slots"] = tokens  # the planned raters' tokens by slot number (JSON keeps plan["raters"] sorted)
    plan["raters"] = {token: slot_trials(plan, r) for r, token in enumerate(tokens)}
    plan["plan_id"] = plan_id(plan)
    check_answers_fit(folder, plan)
    write_text(folder / "plan.json", json.dumps(plan, indent=1, sort_keys=True))
    public = {"plan_id": plan["plan_id"], "raters": {r: [public_trial(t, plan) for t in ts] for r, ts in plan["raters"].items()}}
    write_text(folder / "trials.js", "window.LISTENING_TRIALS = " + json.dumps(public, sort_keys=True) + ";\n")
    write_text(folder / "index.html", render_page(plan))
    return plan


def _clips(real, real_categories, generated, p: StudyParams, real_usable) -> tuple[dict, int]:
    """({system: (clips, categories or None)} with "real" and the anchors "noise" and "tones", the clips' length).

    Every clip is cut to the shortest system's length; the seed picks and crops the real clips.
    """
    rng = np.random.default_rng(p.seed)
    length = min(min(a.shape[-1] for a, _ in generated.values()), real.shape[-1])
    usable = real_usable if real_usable is not None else [real.shape[-1]] * len(real)
    # real clips: those with the fewest padded samples first (padding is silence, and silence gives the answer)
    picks = [int(i) for i in sorted(rng.permutation(len(real)), key=lambda i: usable[i] < length)[: p.clips]]
    real_clips = _crop(np.asarray(real[picks], np.float32), length, [usable[i] for i in picks], rng)
    clips = {"real": (real_clips, [real_categories[i] for i in picks])}
    for system, (audio, labels) in generated.items():
        n = min(p.clips, len(audio))
        clips[system] = (np.asarray(audio[:n, :length], np.float32), list(labels[:n]) if labels else None)
    for anchor, make in (("noise", noise_like), ("tones", tone_sweeps)):
        clips[anchor] = (make(real_clips, len(real_clips), p.seed), None)
    return clips, length


def _write_stimuli(stimuli_dir: Path, clips: dict, held: dict | None, p: StudyParams) -> dict:
    """Each clip as a WAV under an opaque name (a running study's own, else a new one) -> the plan's "stimuli"."""
    held_names = {(v["system"], v["clip"]): name for name, v in (held or {}).get("stimuli", {}).items()}
    stimuli_dir.mkdir(parents=True, exist_ok=True)
    stimuli = {}
    for system, (audio, labels) in clips.items():
        for i, clip in enumerate(audio):
            name = held_names.get((system, i))
            while name is None or name in stimuli:
                name = secrets.token_hex(8)
            info = {"system": system, "clip": i, "category": (labels[i] if labels else "") or ""}
            if p.loudness_match:
                clip, measured = match_loudness(clip, p.loudness_lufs)
                info |= measured
            write_wav(stimuli_dir / f"{name}.wav", clip)
            info["sha256"] = hashlib.sha256((stimuli_dir / f"{name}.wav").read_bytes()).hexdigest()
            stimuli[name] = info
    for stale in stimuli_dir.glob("*.wav"):  # a former build's names
        if stale.stem not in stimuli:
            stale.unlink()
    return stimuli


def render_page(plan: dict) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("cry_diffusion", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined)  # fmt: skip
    return env.get_template("listening.html.j2").render(plan_id=plan["plan_id"], scale=MOS_SCALE, dataset=plan["dataset"],
                                                        seconds=plan["clip_seconds"])  # fmt: skip
