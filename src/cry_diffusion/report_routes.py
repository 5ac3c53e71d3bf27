"""What the report says of each route (cry_diffusion.generator): its model, samples, time to quality, memorization,
and the routes head to head.

    from cry_diffusion import report_routes
    section["routes"] = [report_routes.route_section("mel-griffin_lim", checkpoint, losses, samples, real)]
    section["side_by_side"] = report_routes.side_by_side(routes, steps, evals, references, checkpoints)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .report import mel_png_uri, png_uri, wav_uri
from .report_format import distinct_text, fad_text, fmt, with_interval

# Below this many steps a run is a pipeline check, not a model: the paper heard clear cries after ~150K.
SMOKE_TEST_STEPS = 50_000


def _settings(prefix: str, checkpoint: dict) -> dict:
    tp = checkpoint["train_params"]
    return {**{f"{prefix}model.{k}": v for k, v in checkpoint["model_params"].items()},
            **{f"{prefix}diffusion.{k}": v for k, v in checkpoint["diffusion_params"].items()},
            **{f"{prefix}train.{k}": v for k, v in tp.items()},
            f"{prefix}parameters": f"{sum(w.numel() for w in checkpoint['model'].values()):,}",
            f"{prefix}trained": f"{checkpoint['step']:,} steps in {checkpoint['elapsed_seconds'] / 60:.1f} min on "
                                f"{checkpoint.get('device', '?')}"}  # fmt: skip


def _route_settings(route: str, checkpoint: dict, vocoder: dict | None) -> dict:
    """The generator's settings, then its vocoder's (or the untrained one it uses), then how it was trained."""
    from .generator import vocoder_of

    settings = _settings("" if route == "waveform" else "prior ", checkpoint)
    if vocoder is not None:
        settings |= _settings("vocoder ", vocoder)
    elif route != "waveform":
        settings["vocoder"] = f"{vocoder_of(route)} (no training)"
    return settings | {"class names": ", ".join(checkpoint.get("class_names") or []) or "(unconditional)",
                       "resumed from a checkpoint": f"{checkpoint.get('resumes', 0)} times (the loss curve keeps every row)"}


def _sample_cards(samples: dict[int, tuple[np.ndarray, dict]], mel_params) -> list[dict]:
    """Every generated clip, playable with its mel, grouped by step count, most steps first."""
    return [
        {
            "steps": steps,
            "info": info,
            "clips": [
                {"label": f"#{i} {names[i]}" if names else f"#{i}", "audio": wav_uri(x), "mel": mel_png_uri(x, mel_params)}
                for names in [info.get("label_names")]
                for i, x in enumerate(audio)
            ],
        }
        for steps, (audio, info) in sorted(samples.items(), reverse=True)
    ]


def _memorization(e: dict, generated: np.ndarray, train_segments: np.ndarray | None, pairs: int) -> dict:
    """The copy threshold, per-category scores, and the `pairs` clips closest to a training segment beside it."""
    nn = e["nearest_train"]
    found = {"copy_threshold": nn["threshold"],
             "per_category": [{"category": c, "n": v["n"], "n_ref": v["n_ref"], "accuracy": fmt(v["accuracy"], ".2f"),
                               "w1": [fmt(w) for w in v["wasserstein"].values()]}
                              for c, v in (e.get("per_category") or {}).items()]}  # fmt: skip
    if train_segments is not None:
        found["pairs"] = [
            {"label": f"#{i}", "distance": nn["distance"][i], "near_copy": nn["distance"][i] <= nn["threshold"],
             "generated": wav_uri(generated[i]), "train": wav_uri(train_segments[nn["index"][i]])}  # fmt: skip
            for i in np.argsort(nn["distance"])[:pairs].tolist()
        ]
    return found


def route_section(route: str, checkpoint: dict, losses: dict[str, str | Path], samples: dict[int, tuple[np.ndarray, dict]],
                  real: list[tuple[str, np.ndarray]], mel_params=None, tradeoff: dict | None = None,
                  figures: dict[str, str | Path] | None = None, evals: dict[int, dict] | None = None,
                  train_segments: np.ndarray | None = None, vocoder: dict | None = None,
                  progress: tuple[dict, str | Path] | None = None, pairs: int = 3) -> dict:  # fmt: skip
    """What the report says of one route (cry_diffusion.generator): its model, samples, time to quality, memorization.

    checkpoint: the route's generator's model file (DiffWave, or the mel prior); vocoder: a trained
    vocoder's model file (DiffWave's), None for Griffin-Lim. losses: the training curves' figures.
    samples and evals: per step count. progress: (cry_diffusion.progress.measure's result, its figure).
    """
    from .generator import route_label

    top = max(samples)
    e = (evals or {}).get(top)
    section = {
        "route": route, "label": route_label(route), "waveform": route == "waveform",
        "step": checkpoint["step"],
        "smoke_test": checkpoint["step"] < SMOKE_TEST_STEPS,
        "smoke_test_steps": SMOKE_TEST_STEPS,
        "minutes": checkpoint["elapsed_seconds"] / 60,
        "unreadable_checkpoints": checkpoint.get("unreadable_checkpoints", []),
        "settings": _route_settings(route, checkpoint, vocoder),
        "loss_figures": {name: png_uri(path) for name, path in losses.items()},
        "samples": _sample_cards(samples, mel_params),
        "figures": {key: png_uri(path) for key, path in (figures or {}).items()},
        "tradeoff": tradeoff_section(tradeoff) if tradeoff else None,
        "progress": progress and progress_section(*progress),
        "pairs_steps": top,
        "pairs": [],
        "per_category": [],
    }
    if e is not None:
        section |= _memorization(e, samples[top][0], train_segments, pairs)
    return section


def tradeoff_section(result: dict) -> dict:
    """The time-to-quality table: every step count against the full chain (cry_diffusion.tradeoff.compare)."""
    from .tradeoff import LABELS

    def diff(r, name):
        if r["difference"] is None:
            return "baseline"
        text = with_interval(r["difference"][name], "+.3g")
        return text + " \u2020" if name == "fad" and not r["fad"].get("reliable", True) else text

    def margin(name):
        m = result.get("margins", {}).get(name)
        return f"{LABELS[name]} {fmt(m, '.3g')}"

    rows = [{"steps": r["steps"], "sampler": r["sampler"] or "", "n": r["n"],
             "wall": fmt(r["wall_seconds_per_audio_second"], ".3f"), "speedup": fmt(r["speedup"], ".1f"),
             "kid": with_interval(r.get("kid")), "kid_diff": diff(r, "kid"),
             "recall": with_interval(r.get("recall"), ".2f"), "recall_diff": diff(r, "recall"),
             "coverage": with_interval(r.get("coverage"), ".2f"), "coverage_diff": diff(r, "coverage"),
             "distinct_diff": diff(r, "distinct_fraction"),
             "fad": fad_text(r["fad"]), "fad_diff": diff(r, "fad"),
             "worse_on": ", ".join(LABELS[k] for k in r["worse_on"]) or "nothing",
             "better_on": ", ".join(LABELS[k] for k in r.get("better_on", [])) or "nothing",
             "undecided_on": ", ".join(LABELS[k] for k in r.get("undecided_on", [])) or "nothing",
             "verdict": r.get("verdict", "no worse" if r["no_worse"] else "worse")} for r in result["rows"]]  # fmt: skip
    return {"rows": rows, "fastest": result["fastest_no_worse"], "base_steps": result["base_steps"],
            "base_sampler": result["base_sampler"], "confidence": result["confidence"], "paired": result.get("paired", True),
            "margins": ", ".join(margin(name) for name in result.get("margins", {}))}


# The features whose clip medians the progress table checks against the real clips' range (the target: a model that cries)
PROGRESS_FEATURES = ("f0_mean_hz", "voiced_fraction", "f0_range_hz")


def progress_section(result: dict, figure: str | Path) -> dict:
    """Quality against training time (cry_diffusion.progress.measure): one row per snapshot, and the figure."""
    from .features import FEATURES

    low, high = result["percentiles"]
    ranges = result["real_range"]

    def median(r, f):
        lo, hi = r.get("median_interval", {}).get(f) or (None, None)
        ratio = r.get("spread_ratio", {}).get(f)
        return {"value": f"{fmt(r['median'][f])} [{fmt(lo)}, {fmt(hi)}]", "inside": r["inside"][f],
                "spread": fmt(ratio, ".2f"), "of": f"{r['with_value'][f]}/{r['n']}"}

    return {
        "figure": png_uri(figure), "steps": result["steps"], "n": result["n"], "percentiles": f"{low}th-{high}th",
        "band_pass": result.get("band_pass"),
        "features": [{"label": FEATURES[f], "range": "n/a" if ranges[f] is None else
                      f"{ranges[f][0]:.3g}-{ranges[f][1]:.3g}"} for f in PROGRESS_FEATURES],
        "rows": [{"step": r["step"], "minutes": fmt(r["minutes"], ".3g"), "trained_on": r["trained_on"],
                  "fad": fad_text(r["fad"]),
                  "kid": with_interval((r.get("level_normalised") or r).get("kid")),
                  "recall": with_interval((r.get("level_normalised") or r).get("recall"), ".2f"),
                  "coverage": with_interval((r.get("level_normalised") or r).get("coverage"), ".2f"),
                  "distinct": [distinct_text((r.get("distinct_fraction") or {}).get(space))
                               for space in ("in_domain", "pretrained")],
                  "medians": [median(r, f) for f in PROGRESS_FEATURES]}
                 for r in result["rows"]],
    }  # fmt: skip


def side_by_side(routes: list[str], steps: list[int], evals: dict[str, dict], references: dict[str, dict],
                 checkpoints: list[dict]) -> list[dict]:  # fmt: skip
    """The generators head to head: per route and step count, training, KID, diversity, voicing, f0 and whether it cries."""
    from .generator import route_label, system
    from .verdict import cry_checks, passed, summary, undecided

    rows = []
    for route, checkpoint in zip(routes, checkpoints):
        for s in sorted(steps, reverse=True):
            e = evals[system(route, s)]
            levelled, bands = e.get("level_normalised") or e, e.get("band_checks") or {}
            checks = cry_checks(e, references["real"], references["tones"])

            def band(name):
                b = bands.get(name) or {}
                text = f"{fmt(b.get('median'))} [{fmt(b.get('low'))}, {fmt(b.get('high'))}]"
                return {"text": text, "inside": b.get("inside")}

            rows.append({"route": route_label(route), "minutes": fmt(checkpoint["elapsed_seconds"] / 60, ".1f"),
                         "train_steps": f"{checkpoint['step']:,}", "steps": s, "n": e["n"],
                         "kid": with_interval(levelled.get("kid")), "recall": with_interval(levelled.get("recall"), ".2f"),
                         "coverage": with_interval(levelled.get("coverage"), ".2f"),
                         "voicing": band("voiced_fraction"), "f0": band("f0_mean_hz"), "f0_range": band("f0_range_hz"),
                         "cries": passed(checks),
                         "verdict": summary(checks, undecided(e, references["real"], references["tones"]))})  # fmt: skip
    return rows
