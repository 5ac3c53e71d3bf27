"""Does a generated set cry? Every check a set must pass, read off its evaluation, in one place.

A set passes when:
- its voicing, median f0 and within-clip f0 range sit inside the real held-out clips' 10th-90th
  percentile bands, with the median's interval inside (cry_diffusion.progress.band_checks);
- its recall and coverage are at least half the real floor's, in both embeddings, level-normalised;
- its level-normalised KID lies below the tone sweeps', the intervals apart, in both embeddings;
- the log-mel copy search finds no near copy of a training segment.

Each check is True, False, or None where it can't judge: the evaluation has no value for it (no
pretrained embedding installed, no clip with a voiced frame), or the real floor itself fails it.
The floor is real held-out clips, as many as the generated set; a check it fails at this clip
count (a band drawn from clips that are not independent, since a recording gives several
segments; intervals too wide to sit apart at n = 32) would fail a perfect generator too, so it
says nothing about this one. A near copy counts against a set only where it has more of them
than the floor, beyond chance: the copy threshold is a percentile of the real clips' own
distances, so the floor has about that share by construction. The report's side-by-side table
of the generators and the benchmarks read the same checks.

    from cry_diffusion import verdict
    checks = verdict.cry_checks(evaluation, floor_evaluation, tones_evaluation)
    print(verdict.summary(checks))
"""

from __future__ import annotations

from .progress import BAND_STATISTICS

BANDS = {"voiced_fraction": "voicing", "f0_mean_hz": "median f0", "f0_range_hz": "f0 range"}  # checked in the real band
SPACES = {"in-domain": lambda e: e.get("level_normalised"),
          "pretrained": lambda e: (e.get("pretrained") or {}).get("level_normalised")}  # fmt: skip
DIVERSITY_SHARE = 0.5  # recall and coverage must reach this share of the real floor's


def _value(d, name, key="value"):
    return None if not d or not d.get(name) or d[name].get(key) is None else d[name][key]


COPY_ALPHA = 0.05  # more near copies than the floor: a one-sided Fisher exact test at this level


def cry_checks(e: dict, floor: dict, tones: dict) -> dict[str, bool | None]:
    """{check: passed} for one evaluation (cry_diffusion.evaluate.score's, with the evaluate rule's band_checks);
    None where it can't judge, the real floor's own failures included."""
    checks = _checks(e, floor, tones)
    for name, ok in _checks(floor, floor, tones).items():
        if ok is False:
            checks[name] = None
    for feature, name in BANDS.items():  # a band: judged on the statistics the floor passes (its share, median, ...)
        mine, real = ((x.get("band_checks") or {}).get(feature) or {} for x in (e, floor))
        judged = [s for s in BAND_STATISTICS if s not in (real.get("failed") or [])]
        if mine.get("inside") is not None and real.get("inside") is False and judged:
            checks[name] = not set(mine.get("failed") or []) & set(judged)
    return checks


def undecided(e: dict, floor: dict, tones: dict) -> list[str]:
    """What the real floor fails at this clip count, so can't judge a generated set: checks, and a band's statistics."""
    said = []
    for name, ok in _checks(floor, floor, tones).items():
        feature = next((f for f, n in BANDS.items() if n == name), None)
        failed = ((floor.get("band_checks") or {}).get(feature) or {}).get("failed") if feature else None
        if ok is False:
            said.append(f"{name} ({', '.join(failed)})" if failed else name)
    return said


def _checks(e: dict, floor: dict, tones: dict) -> dict[str, bool | None]:
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
    checks["no more near copies than the floor"] = _copies(e, floor)
    return checks


def _copies(e: dict, floor: dict) -> bool | None:
    mine, real = e.get("nearest_train_mel"), floor.get("nearest_train_mel")
    if not mine or not real or not e.get("n") or not floor.get("n"):
        return None
    from scipy.stats import fisher_exact

    k, n, k0, n0 = mine["near_copies"], e["n"], real["near_copies"], floor["n"]
    return bool(fisher_exact([[k, n - k], [k0, n0 - k0]], alternative="greater").pvalue >= COPY_ALPHA)


def passed(checks: dict) -> bool:
    """Every check that could be made passed (and at least one could)."""
    made = [v for v in checks.values() if v is not None]
    return bool(made) and all(made)


def summary(checks: dict, undecided: list[str] = ()) -> str:
    """One line: "cries by every check", or how many passed and which failed; and the checks the floor fails."""
    failed = [name for name, ok in checks.items() if ok is False]
    made = sum(v is not None for v in checks.values())
    if not failed:
        said = f"cries by all {made} checks" if passed(checks) else "no check could be made"
    else:
        said = f"not yet: {made - len(failed)} of {made} checks pass; fails {', '.join(failed)}"
    return said + (f" (the real floor fails {', '.join(undecided)} at this clip count: not judged)" if undecided else "")
