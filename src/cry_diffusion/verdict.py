"""Does a generated set cry? Every check a set must pass, read off its evaluation, in one place.

A set passes when:
- its voicing, median f0 and within-clip f0 range sit inside the real held-out clips' 10th-90th
  percentile bands, with the median's interval inside (cry_diffusion.progress.band_checks);
- its recall and coverage are at least half the real floor's, in both embeddings, level-normalised;
- its level-normalised KID lies below the tone sweeps', the intervals apart, in both embeddings;
- the log-mel copy search finds no near copy of a training segment.

Each check is True, False, or None where the evaluation has no value for it (no pretrained
embedding installed, no clip with a voiced frame). The report's side-by-side table of the
generators and the benchmarks read the same checks.

    from cry_diffusion import verdict
    checks = verdict.cry_checks(evaluation, floor_evaluation, tones_evaluation)
    print(verdict.summary(checks))
"""

from __future__ import annotations

BANDS = {"voiced_fraction": "voicing", "f0_mean_hz": "median f0", "f0_range_hz": "f0 range"}  # checked in the real band
SPACES = {"in-domain": lambda e: e.get("level_normalised"),
          "pretrained": lambda e: (e.get("pretrained") or {}).get("level_normalised")}  # fmt: skip
DIVERSITY_SHARE = 0.5  # recall and coverage must reach this share of the real floor's


def _value(d, name, key="value"):
    return None if not d or not d.get(name) or d[name].get(key) is None else d[name][key]


def cry_checks(e: dict, floor: dict, tones: dict) -> dict[str, bool | None]:
    """{check: passed} for one evaluation (cry_diffusion.evaluate.score's, with the evaluate rule's band_checks)."""
    checks = {}
    for feature, name in BANDS.items():
        checks[name] = (e.get("band_checks") or {}).get(feature, {}).get("inside")
    for space, get in SPACES.items():
        mine, real, tone = get(e), get(floor), get(tones)
        for measure in ("recall", "coverage"):
            v, r = _value(mine, measure), _value(real, measure)
            checks[f"{measure} ({space})"] = None if v is None or r is None else v >= DIVERSITY_SHARE * r
        high, low = _value(mine, "kid", "high"), _value(tone, "kid", "low")
        checks[f"KID below tones ({space})"] = None if high is None or low is None else high < low
    copies = e.get("nearest_train_mel")
    checks["no near copies"] = None if not copies else copies["near_copies"] == 0
    return checks


def passed(checks: dict) -> bool:
    """Every check that could be made passed (and at least one could)."""
    made = [v for v in checks.values() if v is not None]
    return bool(made) and all(made)


def summary(checks: dict) -> str:
    """One line: "cries by every check", or how many passed and which failed."""
    failed = [name for name, ok in checks.items() if ok is False]
    made = sum(v is not None for v in checks.values())
    if not failed:
        return f"cries by all {made} checks" if passed(checks) else "no check could be made"
    return f"not yet: {made - len(failed)} of {made} checks pass; fails {', '.join(failed)}"
