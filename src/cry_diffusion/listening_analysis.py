"""What the listeners said: from a study's answers (cry_diffusion.listening) to numbers with intervals.

    from cry_diffusion import listening_analysis, listening_store
    result = listening_analysis.analyse(plan, listening_store.read_answers(folder), metrics, AnalysisParams())
    listening_analysis.figure(result, "results.png")

Per system (each step count, the real clips, the anchors):
- 2AFC: how often the generated clip was picked as the real baby, with an interval and a two-sided test
  against 50% (chance: people can't tell) from the two-way bootstrap: trials share raters and clips, and
  a binomial test that treats them as independent rejected a true 50% in 17-35% of simulated studies;
- MOS: the mean rating with a two-way bootstrap interval (raters and clips resampled together, both
  sources of variation in it);
- the attention checks' rows (the noise) over every rater, before the exclusion rule, which drops the
  raters who failed them;
- Krippendorff's alpha per trial kind and generated system, over the generated clips only (pooled with
  real clips and anchors, it measured how far apart the anchors are), the raters the plan's exclusion
  rule left out and why, the category confusion matrix, and Spearman's rho between each automatic
  metric's ranking of the step counts and the listeners', with a bootstrap interval from the same resampling.
Nothing here makes up answers: with none, the result says so, and how to collect them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from . import generator
from .atomic import write_text
from .params import Params


@dataclass(frozen=True)
class AnalysisParams(Params):
    """The `listening.analysis` config section: changing it redoes the analysis, never the study."""

    bootstrap: int = 1000  # resamples of the two-way bootstrap
    confidence: float = 0.95
    seed: int = 0


LABELS = {"real": "real (hidden reference)", "noise": "Gaussian noise (anchor)", "tones": "tone sweeps (anchor)"}


def label(system: str) -> str:
    return LABELS.get(system) or f"generated, {generator.label(system)}"


def krippendorff_alpha(units: dict, metric: str = "nominal") -> float | None:
    """Krippendorff's alpha over units (a clip) -> the values raters gave it; units with one value don't pair.

    metric: "nominal" (categories, picks) or "interval" (ratings). None when fewer than two units pair up or
    the values never vary (agreement is then undefined, not perfect).
    """
    groups = [list(v) for v in units.values() if len(v) >= 2]
    if len(groups) < 2:
        return None
    values = [x for g in groups for x in g]
    n = len(values)

    def disagreement(xs) -> float:  # the sum over ordered pairs i != j of delta(x_i, x_j)
        if metric == "interval":
            a = np.asarray(xs, float)
            return float(2 * len(a) * (a**2).sum() - 2 * a.sum() ** 2)
        _, counts = np.unique(np.asarray(xs, str), return_counts=True)
        return float(len(xs) ** 2 - (counts**2).sum())

    expected = disagreement(values) / (n * (n - 1))
    if expected == 0:
        return None
    observed = sum(disagreement(g) / (len(g) - 1) for g in groups) / n
    return float(1 - observed / expected)


def two_way_means(table: list[tuple], systems: list[str], p: AnalysisParams, rng) -> np.ndarray:
    """Bootstrap replicates [B, systems] of each system's mean value, raters and clips resampled together.

    table: (rater, system, clip, value) rows. Each replicate draws the raters with replacement (once, shared by
    every system: a rater's leniency moves all their answers) and each system's clips with replacement; a row
    then counts (times its rater was drawn) x (times its clip was drawn). NaN where a replicate keeps no row.
    """
    raters = sorted({r for r, *_ in table})
    index = {r: i for i, r in enumerate(raters)}
    drawn_raters = rng.multinomial(len(raters), np.full(len(raters), 1 / len(raters)), size=p.bootstrap)
    out = np.full((p.bootstrap, len(systems)), np.nan)
    for s, system in enumerate(systems):
        rows = [row for row in table if row[1] == system]
        if not rows:
            continue
        clips = sorted({c for _, _, c, _ in rows})
        cindex = {c: i for i, c in enumerate(clips)}
        r_idx = np.array([index[r] for r, *_ in rows])
        c_idx = np.array([cindex[c] for _, _, c, _ in rows])
        values = np.array([v for *_, v in rows], float)
        drawn_clips = rng.multinomial(len(clips), np.full(len(clips), 1 / len(clips)), size=p.bootstrap)
        weight = drawn_raters[:, r_idx] * drawn_clips[:, c_idx]
        total = weight.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, s] = np.where(total > 0, (weight * values).sum(1) / np.maximum(total, 1), np.nan)
    return out


def percentile_interval(values: np.ndarray, confidence: float) -> tuple[float | None, float | None]:
    values = values[np.isfinite(values)]
    if not values.size:
        return None, None
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_p(values: np.ndarray, null: float) -> float | None:
    """Two-sided p of `null` against bootstrap replicates: twice the smaller share on either side of it (with
    the observed set counted as one replicate), so it falls below 1 - confidence exactly when `null` is outside
    the percentile interval."""
    values = values[np.isfinite(values)]
    if not values.size:
        return None
    side = min((values <= null).sum(), (values >= null).sum())
    return float(min(1.0, 2 * (side + 1) / (values.size + 1)))


def _spearman(a, b) -> float | None:
    from scipy.stats import spearmanr

    a, b = np.asarray(a, float), np.asarray(b, float)
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 3 or np.ptp(a[keep]) == 0 or np.ptp(b[keep]) == 0:
        return None
    return float(spearmanr(a[keep], b[keep]).statistic)


# Automatic metrics whose ranking of the step counts is set against the listeners'; all are lower-is-better.
METRICS = {
    "FAD": ("fad", "value"),
    "KID": ("kid", "value"),
    "FAD, pretrained": ("pretrained", "fad", "value"),
    "KID, pretrained": ("pretrained", "kid", "value"),
    "NDB share": ("ndb", "ndb_fraction"),
}


def metric_values(evaluation: dict) -> dict[str, float]:
    """The METRICS found in one evaluation JSON (cry_diffusion.evaluate.score); a missing one is left out."""
    out = {}
    for name, path in METRICS.items():
        node = evaluation
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, (int, float)) and np.isfinite(node):
            out[name] = float(node)
    return out


def how_to_collect(folder: str) -> str:
    return (f"python -m cry_diffusion.listening serve {folder} and share the URL it prints (or send {folder}/index.html "
            f"with trials.js and stimuli/ and add the files raters send back with python -m cry_diffusion.listening "
            f"import {folder} FILES...); then snakemake results/report.html")


def exclusions(plan: dict, answers: list[dict]) -> dict[str, str]:
    """Rater -> why the plan's exclusion rule (fixed before any answer) leaves them out."""
    rule, stimuli = plan["exclusion"], plan["stimuli"]
    trials = {r: {t["id"]: t for t in ts} for r, ts in plan["raters"].items()}
    by_rater: dict[str, list] = {}
    for a in answers:
        by_rater.setdefault(a["rater"], []).append(a)
    out = {}
    for rater, given in by_rater.items():
        checks = [(trials[rater][a["trial"]], a) for a in given if trials[rater][a["trial"]]["attention"]]
        failed = sum(not _passed(t, a["answer"], stimuli, rule) for t, a in checks)
        completed = len(given) / len(trials[rater])
        why = []
        if checks and failed >= rule["failed_checks"]:
            why.append(f"failed {failed} of {len(checks)} attention checks (the rule: {rule['failed_checks']} or more)")
        if completed < rule["min_completed"]:
            why.append(f"answered {len(given)} of {len(trials[rater])} trials (the rule: at least {rule['min_completed']:.0%})")
        if why:
            out[rater] = "; ".join(why)
    return out


def _passed(trial: dict, answer: str, stimuli: dict, rule: dict) -> bool:
    if trial["kind"] == "afc":  # noise against a real cry: the real one must be picked
        return stimuli[answer]["system"] == "real"
    return int(answer) <= rule["mos_noise_max"]  # noise rated: low


def analyse(plan: dict, answers: list[dict], metrics: dict[str, dict[str, float]] | None = None,
            p: AnalysisParams = AnalysisParams(), folder: str = "results/listening/NAME") -> dict:  # fmt: skip
    """Everything the report says of a study. metrics: system -> {metric name: value} (metric_values)."""
    rng = np.random.default_rng(p.seed)
    base = {"dataset": plan["dataset"], "plan_id": plan["plan_id"], "answers": len(answers),
            "raters_planned": plan["params"]["raters"], "raters_drawn": len(plan["raters"]) - plan["params"]["raters"],
            "kinds": plan["kinds"], "exclusion": plan["exclusion"],
            "confidence": p.confidence, "bootstrap": p.bootstrap, "clip_seconds": plan["clip_seconds"],
            "loudness_matched": plan["params"]["loudness_match"], "how_to_collect": how_to_collect(folder)}  # fmt: skip
    if not answers:
        return base | {"raters": [], "excluded": [], "afc": None, "mos": None, "category": None, "alpha": {},
                       "agreement": []}  # fmt: skip
    stimuli = plan["stimuli"]
    trials = {r: {t["id"]: t for t in ts} for r, ts in plan["raters"].items()}
    excluded = exclusions(plan, answers)
    kept = [a for a in answers if a["rater"] not in excluded]
    raters = sorted({a["rater"] for a in answers})
    result = base | {
        "raters": [{"rater": r, "answered": sum(a["rater"] == r for a in answers), "of": len(trials[r]),
                    "excluded": excluded.get(r)} for r in raters],
        "excluded": [{"rater": r, "why": why} for r, why in sorted(excluded.items())],
        "included_raters": len(raters) - len(excluded),
    }  # fmt: skip
    generated = plan["systems"]

    afc_rows, mos_rows = _rows(kept, trials, stimuli)
    # the attention checks' rows over every rater: over the kept ones, who all passed them, they were 0% by construction
    every_afc, every_mos = _rows(answers, trials, stimuli)
    afc_rows = [r for r in afc_rows if r[1] != "noise"] + [r for r in every_afc if r[1] == "noise"]
    mos_rows = [r for r in mos_rows if r[1] != "noise"] + [r for r in every_mos if r[1] == "noise"]
    result["afc"] = _system_rows(afc_rows, [s for s in generated + ["noise"] if any(r[1] == s for r in afc_rows)], p, rng,
                                 null=0.5) if afc_rows else None  # fmt: skip
    result["mos"] = _system_rows(mos_rows, [s for s in generated + ["real", "tones", "noise"] if any(r[1] == s for r in mos_rows)],
                                 p, rng) if mos_rows else None  # fmt: skip

    def units(kind: str, system: str) -> dict:
        """Clip -> the answers it got, over the generated clips of one system (no attention check, no anchor)."""
        out: dict = {}
        for a in kept:
            t = trials[a["rater"]][a["trial"]]
            if a["kind"] == kind and t["system"] == system:
                clip = next(s for s in t["stimuli"] if stimuli[s]["system"] != "real")
                value = (a["answer"] == clip) if kind == "afc" else float(a["answer"]) if kind == "mos" else a["answer"]
                out.setdefault(clip, []).append(value)
        return out

    result["alpha"] = {kind: {s: krippendorff_alpha(units(kind, s), "interval" if kind == "mos" else "nominal") for s in generated}
                       for kind in plan["kinds"]}  # fmt: skip
    result["category"] = _confusion(plan, kept, trials) if "category" in plan["kinds"] else None
    result["agreement"] = _agreement(generated, afc_rows, mos_rows, metrics or {}, p, rng)
    return result


def _rows(answers: list[dict], trials: dict, stimuli: dict) -> tuple[list, list]:
    """The 2AFC and MOS answers as (rater, system, clip, value) rows: the generated clip and whether it was picked as
    real; the rated clip and its rating."""
    afc, mos = [], []
    for a in answers:
        t = trials[a["rater"]][a["trial"]]
        if a["kind"] == "afc":
            other = next(s for s in t["stimuli"] if stimuli[s]["system"] != "real")
            afc.append((a["rater"], t["system"], other, float(a["answer"] == other)))
        elif a["kind"] == "mos":
            mos.append((a["rater"], stimuli[a["stimuli"][0]]["system"], a["stimuli"][0], float(a["answer"])))
    return afc, mos


def _system_rows(rows: list[tuple], systems: list[str], p: AnalysisParams, rng, null: float | None = None) -> list[dict]:
    """Per system: the mean of its rows' values with the two-way bootstrap's interval (and, given `null`, its p
    against it); the noise rows are over every rater, before exclusion."""
    boots = two_way_means(rows, systems, p, rng)
    out = []
    for i, system in enumerate(systems):
        values = [r[3] for r in rows if r[1] == system]
        low, high = percentile_interval(boots[:, i], p.confidence)
        out.append({"system": system, "label": label(system), "n": len(values), "mean": float(np.mean(values)),
                    "low": low, "high": high, "raters": len({r[0] for r in rows if r[1] == system}),
                    "clips": len({r[2] for r in rows if r[1] == system}), "attention": system == "noise",
                    "before_exclusion": system == "noise"}
                   | ({} if null is None else {"picked_as_real": int(sum(values)), "rate": float(np.mean(values)),
                                               "p_value": bootstrap_p(boots[:, i], null)}))  # fmt: skip
    return out


def _confusion(plan: dict, kept: list[dict], trials: dict) -> dict | None:
    """Rows: the clip's category (a real clip's label, a generated clip's intended one); columns: the answer."""
    cats = plan["categories"]
    tables: dict[str, np.ndarray] = {}
    for a in kept:
        if a["kind"] != "category":
            continue
        t = trials[a["rater"]][a["trial"]]
        side = "real" if t["system"] == "real" else "generated"
        m = tables.setdefault(side, np.zeros((len(cats), len(cats)), int))
        m[cats.index(t["truth"]), cats.index(a["answer"])] += 1
    if not tables:
        return None
    return {"categories": cats, **{side: {"matrix": m.tolist(), "n": int(m.sum()), "accuracy": float(np.trace(m) / m.sum())}
                                   for side, m in tables.items()}}  # fmt: skip


def _agreement(generated, afc_rows, mos_rows, metrics, p: AnalysisParams, rng) -> list[dict]:
    """Spearman's rho of each metric's ranking of the step counts against the listeners' (lower metric = better,
    so rho near +1: the metric orders the step counts as people did), with an interval from two-way bootstrap
    replicates of the listeners' scores (the metrics' own uncertainty is not in it)."""
    out = []
    for measure, rows in (("MOS", mos_rows), ("2AFC picked as real", afc_rows)):
        systems = [s for s in generated if any(r[1] == s for r in rows)]
        if len(systems) < 3:
            continue
        listeners = np.array([np.mean([r[3] for r in rows if r[1] == s]) for s in systems])
        boots = two_way_means(rows, systems, p, rng)
        for name in METRICS:
            values = np.array([metrics.get(s, {}).get(name, np.nan) for s in systems])
            if not np.isfinite(values).all():
                continue
            rho = _spearman(-values, listeners)
            reps = np.array([_spearman(-values, b) if np.isfinite(b).all() else np.nan for b in boots], float)
            low, high = percentile_interval(reps[np.isfinite(reps)], p.confidence)
            out.append({"metric": name, "listeners": measure, "systems": len(systems), "rho": rho, "low": low, "high": high})
    return out


def figure(result: dict, path) -> None:
    """The 2AFC rates and the MOS per system with their intervals; with no answers, a panel that says so."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plots import save

    panels = [k for k in ("afc", "mos") if result.get(k)]
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(5.5 * max(1, len(panels)), 3.6), squeeze=False)
    if not panels:
        axes[0, 0].axis("off")
        axes[0, 0].text(0.5, 0.5, f"No listening answers yet\n({result['dataset']})", ha="center", va="center", fontsize=13)
    for ax, kind in zip(axes[0], panels):
        rows = result[kind]
        y = np.arange(len(rows))[::-1]
        value = [r["rate"] if kind == "afc" else r["mean"] for r in rows]
        low = [np.nan if r["low"] is None else r["low"] for r in rows]
        high = [np.nan if r["high"] is None else r["high"] for r in rows]
        colours = ["#777" if r["system"] in ("noise", "tones") else "#17702b" if r["system"] == "real" else "#1a5fb4" for r in rows]
        ax.errorbar(value, y, xerr=[np.subtract(value, low), np.subtract(high, value)], fmt="none", ecolor="#444", capsize=3)
        ax.scatter(value, y, c=colours, zorder=3)
        ax.set_yticks(y, [r["label"] for r in rows])
        if kind == "afc":
            ax.axvline(0.5, color="#b00020", ls="--", lw=1)
            ax.set_xlim(0, 1)
            ax.set_xlabel("share picked as the real baby (50%: can't tell)")
            ax.set_title("2AFC: generated against real")
        else:
            ax.set_xlim(1, 5)
            ax.set_xlabel("mean naturalness, 1-5")
            ax.set_title("MOS")
    kept = result.get("included_raters", 0)
    fig.suptitle(f"Listening test, {result['dataset']}: {result['answers']} answers, {kept} rater{'s' * (kept != 1)} "
                 f"kept ({int(100 * result['confidence'])}% intervals)")  # fmt: skip
    fig.tight_layout()
    save(fig, path)


def write(result: dict, path) -> None:
    write_text(path, json.dumps(result, indent=1))
