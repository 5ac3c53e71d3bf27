"""Figures of the evaluation: feature histograms real against generated, every metric against sampling steps.

Inputs are the JSON dicts cry_diffusion.evaluate.score writes; each figure is
saved as PNG and PDF side by side (the path's suffix is replaced).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.ticker import NullFormatter

from .features import FEATURES, finite
from .plots import mel_grid, plt, save

# Reference sets as every figure draws them: the floor in green, the ceilings in red and grey.
REFERENCE_STYLE = {"real": ("real vs real", "tab:green"), "noise": ("Gaussian noise", "tab:red"),
                   "tones": ("tone sweeps", "tab:gray")}  # fmt: skip


def save_both(fig, stem: str | Path) -> list[Path]:
    """PNG for the report, PDF for the paper, from one figure (closed afterwards)."""
    paths = [Path(stem).with_suffix(".png"), Path(stem).with_suffix(".pdf")]
    save(fig, *paths)
    return paths


def feature_histograms(generated: dict, reference_features: dict, stem: str | Path, title: str = "") -> list[Path]:
    """One panel per feature: the real held-out clips (the reference's features) against one generated set."""
    fig, axes = plt.subplots(2, 4, figsize=(13, 5.5), layout="constrained")
    for ax, (name, label) in zip(axes.flat, FEATURES.items()):
        real, gen = finite(reference_features[name]), finite(generated["features"][name])
        both = np.concatenate([real, gen])
        bins = np.linspace(both.min(), both.max() + 1e-9, 16) if len(both) else 10
        for values, colour, who in ((real, "tab:green", "real"), (gen, "tab:blue", "generated")):
            if len(values):
                ax.hist(values, bins=bins, alpha=0.55, color=colour, label=f"{who} ({len(values)})", density=True)
        w = generated["wasserstein"][name]
        ax.set_title(f"{label}\nW1 = {w:.3g}" if w is not None else f"{label}\nW1 n/a", fontsize=9)
        ax.tick_params(labelsize=7)
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(title)
    return save_both(fig, stem)


def _levelled(e: dict, name: str):
    d = (e.get("level_normalised") or {}).get(name)
    return None if d is None else d["value"]


DAGGER = "\u2020"
UNRELIABLE = f"{DAGGER}: too few clips per dimension for FAD's interval to cover"


def fad_title(evals) -> str:
    """'FAD', with the dagger and what it means when any of these evaluations' FADs is unreliable (distances.fad)."""
    return f"FAD {DAGGER}" if any(not e["fad"].get("reliable", True) for e in evals) else "FAD"


# Metric name -> (label, how to read it from one evaluation dict); lower is better for all but accuracy,
# precision, recall and coverage.
METRICS = {
    "fad": ("FAD", lambda e: e["fad"]["value"]),
    "kid": ("KID, level-normalised", lambda e: _levelled(e, "kid")),
    "recall": ("recall, level-normalised (higher is better)", lambda e: _levelled(e, "recall")),
    "coverage": ("coverage, level-normalised (higher is better)", lambda e: _levelled(e, "coverage")),
    "ndb": ("NDB / bins", lambda e: e["ndb"]["ndb_fraction"]),
    "pairwise": ("pairwise distance / real's", lambda e: e["pairwise"] / e["pairwise_real"] if e["pairwise"] and e["pairwise_real"] else None),
    "nearest": ("median distance to nearest train", lambda e: e["nearest_train"]["median"]),
    "copies": ("near copies", lambda e: e["nearest_train"]["near_copies"]),
    "accuracy": ("classifier accuracy", lambda e: e["accuracy"]),
    **{f"w1_{name}": (f"W1 {label}", lambda e, name=name: e["wasserstein"][name]) for name, label in FEATURES.items()},
}


def quality_vs_steps(evals: dict[int, dict], references: dict[str, dict], stem: str | Path, title: str = "") -> list[Path]:
    """Every metric against the number of sampling steps, references as horizontal lines, wall time on a second axis."""
    steps = sorted(evals)
    shown = {k: v for k, v in METRICS.items() if any(v[1](evals[s]) is not None for s in steps)}
    cols = 4
    rows = -(-len(shown) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.7 * rows), layout="constrained", squeeze=False)
    for ax in axes.flat[len(shown):]:
        ax.set_visible(False)
    wall = [evals[s].get("wall_seconds_per_audio_second") for s in steps]
    for ax, (key, (label, get)) in zip(axes.flat, shown.items()):
        values = [get(evals[s]) for s in steps]
        ax.plot(steps, [np.nan if v is None else v for v in values], "o-", color="tab:blue", label="generated")
        for ref, (ref_label, colour) in REFERENCE_STYLE.items():
            v = get(references[ref]) if ref in references else None
            if v is not None:
                ax.axhline(v, color=colour, ls="--", lw=1, label=ref_label)
        ax.set_xscale("log")
        ax.set_xticks(steps, [str(s) for s in steps])
        ax.minorticks_off()
        if key == "fad":
            label = fad_title([evals[s] for s in steps]) + (f"\n{UNRELIABLE}" if DAGGER in fad_title([evals[s] for s in steps]) else "")
        ax.set_title(label, fontsize=9 if key != "fad" else 7)
        ax.set_xlabel("sampling steps", fontsize=8)
        ax.tick_params(labelsize=7)
        twin = ax.twinx()
        twin.plot(steps, [np.nan if w is None else w for w in wall], ":", color="tab:purple", lw=1)
        twin.tick_params(labelsize=6, colors="tab:purple")
        twin.set_ylabel("wall s / audio s", fontsize=7, color="tab:purple")
    axes.flat[0].legend(fontsize=6)
    fig.suptitle(title)
    return save_both(fig, stem)


def quality_vs_time(result: dict, references: dict[str, dict], stem: str | Path, title: str = "") -> list[Path]:
    """KID (level-normalised, with its interval: the verdict's main measure) and the acoustic distances against wall
    time per audio second, one point per step count.

    `result` is cry_diffusion.tradeoff.compare's; the fastest set no worse than the baseline is ringed.
    """
    rows = [r for r in result["rows"] if r["wall_seconds_per_audio_second"] and r.get("kid")]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    wall = np.array([r["wall_seconds_per_audio_second"] for r in rows])
    fad = np.array([r["kid"]["value"] for r in rows])
    err = np.array([[r["kid"]["value"] - r["kid"]["low"], r["kid"]["high"] - r["kid"]["value"]] for r in rows]).T
    left.errorbar(wall, fad, yerr=np.clip(np.nan_to_num(err), 0, None), fmt="o", color="tab:blue", capsize=3, label="generated")
    for ref, (label, colour) in REFERENCE_STYLE.items():
        v = _levelled(references[ref], "kid") if ref in references else None
        if v is not None:
            left.axhline(v, color=colour, ls="--", lw=1, label=label)
    base = next((r for r in rows if r["steps"] == result["base_steps"]), None)
    # each acoustic distance relative to the baseline's: 1 = as far from real audio as the full chain
    for name, label in FEATURES.items():
        b = base["w1"].get(name) if base else None
        ys = [r["w1"][name] / b if b and r["w1"].get(name) is not None else np.nan for r in rows]
        right.plot(wall, ys, "o", ms=4, alpha=0.8, label=label)
    right.axhline(1.0, color="k", lw=1)
    fastest = result.get("fastest_no_worse")
    left.set_xscale("log")
    below = _crowded(left, wall, fad)
    for r, x, y, down in zip(rows, wall, fad, below):
        mark = r.get("verdict") or ("worse" if r["worse_on"] else "better" if r.get("better") else "no worse")
        left.annotate(f"{r['steps']} {r['sampler'] or ''}" + ("" if r["steps"] == result["base_steps"] else f"\n{mark}"),
                      (x, y), textcoords="offset points", xytext=(8, -8) if down else (5, 5), fontsize=7,
                      va="top" if down else "bottom")
        if fastest and r["steps"] == fastest["steps"]:
            left.plot([x], [y], "o", ms=14, mfc="none", mec="tab:orange", mew=2, label="fastest shown no worse")
    for ax in (left, right):
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # labelled minor ticks overprint each other within a decade
        ax.set_xlabel("wall seconds per second of audio")
    left.set_ylabel("KID, level-normalised (lower is better)")
    right.set_ylabel("W1 / W1 of the full chain")
    right.set_yscale("log")
    left.legend(fontsize=7)
    right.legend(fontsize=6, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.22))
    fig.suptitle(title)
    return save_both(fig, stem)


def _crowded(ax, x: np.ndarray, y: np.ndarray, width: float = 0.2) -> list[bool]:
    """Which points' labels go below their point: every other one of a run whose neighbours sit closer than
    `width` of the axes apart, about one label's width (the 6- and 7-step chains take nearly the same time,
    and their labels overprinted each other)."""
    ax.get_xlim()  # settles the lazy autoscale, so that the transform below sees the final limits
    where = ax.transAxes.inverted().transform(ax.transData.transform(np.c_[x, y]))[:, 0]
    below = [False] * len(x)
    order = np.argsort(where)
    for prev, cur in zip(order, order[1:]):
        if where[cur] - where[prev] < width:
            below[cur] = not below[prev]
    return below


def mels_real_vs_generated(real: list[np.ndarray], generated: list[np.ndarray], stem: str | Path, params, title: str = "") -> list[Path]:
    """The paper's figure: real log-mels on the top row, generated below, one colour scale."""
    n = min(len(real), len(generated))  # equal rows: generated #i sits under real #i
    titles = [f"real #{i}" for i in range(n)] + [f"generated #{i}" for i in range(n)]
    paths = [Path(stem).with_suffix(".png"), Path(stem).with_suffix(".pdf")]
    for path in paths:
        mel_grid(list(real[:n]) + list(generated[:n]), titles, path, params, columns=max(n, 1), suptitle=title)
    return paths


PROGRESS_PANELS = ("kid", "fad", "recall", "coverage")


def _panel(e: dict, name: str) -> dict | None:
    """One panel's {value, low, high} from a snapshot row or an evaluation: KID, recall, coverage level-normalised."""
    if name == "fad":
        return e["fad"]
    if name in PROGRESS_PANELS:
        return (e.get("level_normalised") or {}).get(name)
    w = e["wasserstein"].get(name)
    return w if isinstance(w, dict) or w is None else {"value": w}


def quality_vs_training(progress: dict, references: dict[str, dict], stem: str | Path, title: str = "") -> list[Path]:
    """FAD and each acoustic W1 distance, with their intervals, against training minutes: one point per snapshot.

    `progress` is cry_diffusion.progress.measure's; the reference sets' values are drawn as lines.
    """
    rows = progress["rows"]
    minutes = np.array([r["minutes"] for r in rows])
    panels = [("kid", "KID, level-normalised"), ("fad", fad_title(rows)), ("recall", "recall, level-normalised"),
              ("coverage", "coverage, level-normalised")] + list(FEATURES.items())
    cols = 3
    fig, axes = plt.subplots(-(-len(panels) // cols), cols, figsize=(11, 2.6 * -(-len(panels) // cols)),
                             layout="constrained", squeeze=False)  # fmt: skip
    for ax, (name, label) in zip(axes.flat, panels):
        points = [_panel(r, name) or {} for r in rows]
        value, low, high = (np.array([np.nan if p.get(k) is None else p[k] for p in points], float)
                            for k in ("value", "low", "high"))  # fmt: skip
        err = np.clip(np.nan_to_num(np.vstack([value - low, high - value])), 0, None)
        ax.errorbar(minutes, value, yerr=err, fmt="o-", color="tab:blue", capsize=3, ms=4, label="generated")
        for ref, (ref_label, colour) in REFERENCE_STYLE.items():
            e = references.get(ref)
            v = None if e is None else (_panel(e, name) or {}).get("value")
            if v is not None:
                ax.axhline(v, color=colour, ls="--", lw=1, label=ref_label)
        if not np.isfinite(value).any():  # f0 of clips with no voiced frame, say
            ax.text(0.5, 0.5, "no generated clip has a value", transform=ax.transAxes, ha="center", fontsize=8)
        ax.set_xlim(0, 1.05 * max(minutes.max(initial=0), 1e-3))
        ax.set_title(label if name in PROGRESS_PANELS else f"W1 of {label}", fontsize=9)
        ax.set_xlabel("training minutes", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    note = f"; {UNRELIABLE}" if DAGGER in fad_title(rows) else ""
    fig.suptitle(title or f"Quality against training time ({progress['steps']} sampling steps, "
                 f"{progress['n']} clips per snapshot; lower is better but for recall and coverage{note})")  # fmt: skip
    return save_both(fig, stem)


def utility_vs_fraction(result: dict, stem: str | Path) -> list[Path]:
    """UAR on held-out real recordings against the share of training recordings, with and without generated clips.

    `result` is cry_diffusion.utility.compare's; TSTR (generated clips only) and chance are drawn as lines.
    """
    fig, ax = plt.subplots(figsize=(6.5, 4), layout="constrained")
    if result.get("skipped"):
        ax.text(0.5, 0.5, f"not measured: {result['skipped']}", ha="center", va="center", wrap=True, fontsize=9)
        ax.axis("off")
        return save_both(fig, stem)
    names = list(dict.fromkeys(r["name"] for r in result["rows"] if r["name"] != "tstr"))
    for k, name in enumerate(names):
        rows = sorted((r for r in result["rows"] if r["name"] == name), key=lambda r: r["fraction"])
        x = np.array([r["fraction"] for r in rows]) * (1 + 0.03 * (k - len(names) / 2))  # side by side, not on top
        v, lo, hi = (np.array([r["uar"][key] for r in rows]) for key in ("value", "low", "high"))
        ax.errorbar(x, v, yerr=np.clip([v - lo, hi - v], 0, None), fmt="o-", capsize=3, ms=4,
                    label="real only (TRTR)" if name == "trtr" else f"real + generated, {name}", lw=2 if name == "trtr" else 1)
    tstr = next(r for r in result["rows"] if r["name"] == "tstr")["uar"]
    ax.axhspan(tstr["low"], tstr["high"], color="tab:purple", alpha=0.15, label=f"generated only (TSTR) {tstr['value']:.2f}")
    ax.axhline(result["chance"], color="grey", ls=":", label="chance")
    ax.set_xscale("log")
    ax.set_xticks(sorted({r["fraction"] for r in result["rows"]}), minor=False)
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.get_xaxis().set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("share of the training recordings")
    ax.set_ylabel("UAR on held-out real recordings")
    ax.set_title(f"Does synthetic data help? ({result['test_recordings']} test recordings, "
                 f"{result['params']['seeds']} seeds, 95% intervals)", fontsize=9)  # fmt: skip
    ax.legend(fontsize=7)
    return save_both(fig, stem)
