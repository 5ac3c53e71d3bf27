"""The HTML report: one self-contained page, figures and audio embedded, opened with no server.

    from cry_diffusion import report
    section = report.data_section("embedded", manifest, table, summary, segments, figures)
    report.render([section], "report.html")
"""

from __future__ import annotations

import base64
import datetime
import io
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd
import soundfile as sf

from . import SAMPLE_RATE, __version__
from .atomic import write_text

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("cry_diffusion", "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    undefined=jinja2.StrictUndefined,
)


def png_uri(path: str | Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()


def wav_uri(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> str:
    """16-bit WAV as a data URI: every browser plays it, and the page stays one file."""
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(np.asarray(audio, np.float32), -1, 1), sample_rate, subtype="PCM_16", format="WAV")
    return "data:audio/wav;base64," + base64.b64encode(buffer.getvalue()).decode()


def reason_kind(reason: str) -> str:
    """'unreadable: soundfile: ...' -> 'unreadable': the counts group by kind, the manifest keeps the detail."""
    return reason.split(":", 1)[0] if reason else ""


def pick_examples(table: pd.DataFrame, n: int) -> pd.DataFrame:
    """Up to n segments, one per category in turn, so every category is heard."""
    if not n or table.empty:
        return table.head(0)
    order = table.groupby("category", sort=True).cumcount()
    return table.assign(_round=order).sort_values(["_round", "category", "index"]).head(n).drop(columns="_round")


def data_section(name: str, manifest: pd.DataFrame, table: pd.DataFrame, summary: dict, segments: np.ndarray,
                 figures: dict[str, str | Path], examples: int = 5) -> dict:  # fmt: skip
    """What the report says of one dataset's data stages (counts come from the segment stage's accounting)."""
    not_ok = manifest[manifest["status"] != "ok"]
    by_reason = (
        not_ok.assign(kind=not_ok["reason"].map(reason_kind))
        .groupby(["row", "status", "kind"]).size().reset_index(name="count")
        .to_dict("records")
    )  # fmt: skip
    picks = pick_examples(table, examples)
    return {
        "name": name,
        "by_reason": by_reason,
        "problems": not_ok[["row", "relpath", "status", "reason"]].head(50).to_dict("records"),
        "problems_more": max(0, len(not_ok) - 50),
        "summary": summary,
        "regions": summary.get("cut_from") == "regions",
        "reconciles": abs(summary["unexplained_seconds"]) <= summary["reconcile_tolerance_seconds"],
        "band_limited_share": summary["seconds_in_band_limited"] / summary["seconds_in"] if summary["seconds_in"] else 0.0,
        "categories": table.assign(category=table["category"].replace("", "(none)"))
        .groupby(["category", "split"]).size().unstack(fill_value=0).reset_index().to_dict("records"),
        "figures": {key: png_uri(path) for key, path in figures.items()},
        "examples": [
            {"label": f"{r.category or 'segment'} #{r.index}", "source": Path(r.path).name, "start_s": r.start_s,
             "audio": wav_uri(segments[r.index])}  # fmt: skip
            for r in picks.itertuples()
        ],
        "model": None,  # filled in by model_section once a model is trained
        "evaluation": None,  # filled in by evaluation_section
        "devices": None,  # filled in by stage_devices
    }


def render(datasets: list[dict], out_path: str | Path, config: dict | None = None) -> None:
    html = _TEMPLATES.get_template("report.html.j2").render(
        datasets=datasets,
        config=config or {},
        version=__version__,
        generated=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    )
    write_text(out_path, html)


# Below this many steps a run is a pipeline check, not a model: the paper heard clear cries after ~150K.
SMOKE_TEST_STEPS = 50_000


def mel_png_uri(audio: np.ndarray, params=None) -> str:
    """A small log-mel picture of one clip, drawn straight to PNG (no axes: it sits on a card)."""
    import matplotlib.pyplot as plt

    from .mel import MelParams, log_mel

    mel = log_mel(np.asarray(audio, np.float32), params or MelParams())
    buffer = io.BytesIO()
    plt.imsave(buffer, mel[::-1], cmap="magma", vmin=np.log(1e-5), vmax=max(float(mel.max()), -4.0), format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def real_cards(real: list[tuple[str, np.ndarray]], mel_params=None) -> list[dict]:
    """Playable real segments, each with its mel, to hear beside the generated ones."""
    return [{"label": label, "audio": wav_uri(x), "mel": mel_png_uri(x, mel_params)} for label, x in real]


def _settings(prefix: str, checkpoint: dict) -> dict:
    tp = checkpoint["train_params"]
    return {**{f"{prefix}model.{k}": v for k, v in checkpoint["model_params"].items()},
            **{f"{prefix}diffusion.{k}": v for k, v in checkpoint["diffusion_params"].items()},
            **{f"{prefix}train.{k}": v for k, v in tp.items()},
            f"{prefix}parameters": f"{sum(w.numel() for w in checkpoint['model'].values()):,}",
            f"{prefix}trained": f"{checkpoint['step']:,} steps in {checkpoint['elapsed_seconds'] / 60:.1f} min on "
                                f"{checkpoint.get('device', '?')}"}  # fmt: skip


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
    from .generator import route_label, vocoder_of

    settings = _settings("" if route == "waveform" else "prior ", checkpoint)
    if vocoder is not None:
        settings |= _settings("vocoder ", vocoder)
    elif route != "waveform":
        settings["vocoder"] = f"{vocoder_of(route)} (no training)"
    settings |= {"class names": ", ".join(checkpoint.get("class_names") or []) or "(unconditional)",
                 "resumed from a checkpoint": f"{checkpoint.get('resumes', 0)} times (the loss curve keeps every row)"}
    top = max(samples)
    e = (evals or {}).get(top)
    section = {
        "route": route, "label": route_label(route), "waveform": route == "waveform",
        "step": checkpoint["step"],
        "smoke_test": checkpoint["step"] < SMOKE_TEST_STEPS,
        "smoke_test_steps": SMOKE_TEST_STEPS,
        "minutes": checkpoint["elapsed_seconds"] / 60,
        "unreadable_checkpoints": checkpoint.get("unreadable_checkpoints", []),
        "settings": settings,
        "loss_figures": {name: png_uri(path) for name, path in losses.items()},
        "samples": [
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
        ],
        "figures": {key: png_uri(path) for key, path in (figures or {}).items()},
        "tradeoff": tradeoff_section(tradeoff) if tradeoff else None,
        "progress": progress and progress_section(*progress),
        "pairs_steps": top,
        "pairs": [],
        "per_category": [],
    }
    if e is not None:
        nn = e["nearest_train"]
        section["copy_threshold"] = nn["threshold"]
        section["per_category"] = [{"category": c, "n": v["n"], "n_ref": v["n_ref"], "accuracy": _fmt(v["accuracy"], ".2f"),
                                    "w1": [_fmt(w) for w in v["wasserstein"].values()]}
                                   for c, v in (e.get("per_category") or {}).items()]  # fmt: skip
        if train_segments is not None:
            section["pairs"] = [
                {"label": f"#{i}", "distance": nn["distance"][i], "near_copy": nn["distance"][i] <= nn["threshold"],
                 "generated": wav_uri(samples[top][0][i]), "train": wav_uri(train_segments[nn["index"][i]])}  # fmt: skip
                for i in np.argsort(nn["distance"])[:pairs].tolist()
            ]
    return section


def stage_devices(checkpoints: list[dict], sample_infos: list[dict], embedding: dict, evaluations: list[dict]) -> list[dict]:
    """Where train, sample, embedding and evaluate ran, as each recorded it: one row per stage.

    checkpoints: each route's trained generator. A stage whose jobs ran on different devices
    lists them all, so a GPU run that fell back to the CPU anywhere shows it.
    """
    def row(stage, records, jobs):
        devices = sorted({r.get("device") or "not recorded" for r in records})
        autocast = sorted({r.get("autocast") or "float32" for r in records if "autocast" in r})
        return {"stage": stage, "jobs": jobs, "device": ", ".join(devices), "autocast": ", ".join(autocast) or "float32"}

    return [row("train", checkpoints, len(checkpoints)), row("sample", sample_infos, len(sample_infos)),
            row("embedding", [embedding], 1), row("evaluate", evaluations, len(evaluations))]


def _fmt(value, spec: str = ".3g") -> str:
    return "n/a" if value is None else format(value, spec)


def _with_interval(d: dict | None, spec: str = ".3g") -> str:
    """{'value', 'low', 'high'} -> 'value [low, high]'."""
    if not d or d.get("value") is None:
        return "n/a"
    return f"{d['value']:{spec}} [{_fmt(d['low'], spec)}, {_fmt(d['high'], spec)}]"


def fad_text(d: dict | None, spec: str = ".3g") -> str:
    """A FAD as 'value [low, high]', with a dagger where too few clips per dimension let no interval cover (distances.fad)."""
    text = _with_interval(d, spec)
    return text + " \u2020" if d and d.get("value") is not None and not d.get("reliable", True) else text


# The distance columns of the metrics table: (header, where its dict sits in one evaluation, is it a FAD)
DISTANCES = (
    ("FAD", "fad", True),
    ("KID", "kid", False),
    ("FAD, level-normalised", "level_normalised.fad", True),
    ("KID, level-normalised", "level_normalised.kid", False),
    ("FAD, pretrained", "pretrained.fad", True),
    ("KID, pretrained", "pretrained.kid", False),
    ("FAD, pretrained, level-normalised", "pretrained.level_normalised.fad", True),
    ("KID, pretrained, level-normalised", "pretrained.level_normalised.kid", False),
)
# Fidelity and diversity, in each embedding (distances.prdc): (header, where its four measures sit), then the
# distinct fraction in each (distances.distinct_fraction)
PRDC_SPACES = (("in-domain", ""), ("pretrained", "pretrained."))
DISTINCT_SPACES = (("in-domain", "distinct_fraction.in_domain"), ("pretrained", "distinct_fraction.pretrained"))
COLLAPSE_MARK = "\u2021"  # a measure that can't tell the real floor from a collapse at this n (collapse.collapse_blind_spots)


def distinct_text(d: dict | None) -> str:
    """A distinct fraction as 'value [low, high]; real low-high', and whether it falls below real sets' range."""
    if not d or d.get("value") is None:
        return "n/a"
    real = d.get("real") or {}
    text = f"{_with_interval(d, '.2f')}; real {_fmt(real.get('low'), '.2f')}-{_fmt(real.get('high'), '.2f')}"
    return text + " (below real)" if d.get("below_real") else text


def evaluation_row(label: str, e: dict, kind: str) -> dict:
    """One line of the metrics tables; `kind` (real, generated, baseline) colours it."""
    from .classifier_scores import CLASS_SCORES
    from .distances import PRDC
    from .evaluate import at_path

    nn, mel_nn = e["nearest_train"], e.get("nearest_train_mel")
    classifier = e.get("classifier")
    return {
        "label": label,
        "kind": kind,
        "n": e["n"],
        "n_ref": e.get("n_ref"),
        "distances": [fad_text(at_path(e, path)) if is_fad else _with_interval(at_path(e, path)) for _, path, is_fad in DISTANCES],
        "prdc": [_with_interval(at_path(e, prefix + name), ".2f") for _, prefix in PRDC_SPACES for name in PRDC],
        "distinct": [distinct_text(at_path(e, path)) for _, path in DISTINCT_SPACES],
        "collapsed": any((at_path(e, path) or {}).get("below_real") for _, path in DISTINCT_SPACES),
        "classifier": None if not classifier else [_with_interval(classifier[k]) for k in CLASS_SCORES],
        "ndb": f"{e['ndb']['ndb']}/{e['ndb']['bins']}",
        "pairwise": f"{_fmt(e['pairwise'])} / {_fmt(e['pairwise_real'])}",
        "nearest": f"{nn['median']:.3g} (real {nn['real_median']:.3g})",
        "copies": f"{nn['near_copies']}/{e['n']}",
        "mel_copies": f"{mel_nn['near_copies']}/{e['n']}" if mel_nn else "n/a",
        "accuracy": _fmt(e["accuracy"], ".2f"),
        "wall": _fmt(e.get("wall_seconds_per_audio_second"), ".3f"),
        "w1": [_fmt(v) for v in e["wasserstein"].values()],
    }


def _metric_tables(sets: list[tuple[str, dict, str]], collapse: dict | None = None) -> dict:
    """The metrics tables' rows and headers, leaving out the columns no set has (the pretrained ones, without its wheel).

    collapse: the real floor's collapse_blind_spots; the headers of measures it lets a collapse through are marked.
    """
    from .classifier_scores import CLASS_SCORES
    from .distances import PRDC
    from .evaluate import at_path

    blind = (collapse or {}).get("blind", {})

    def header(text: str, path: str) -> str:
        return f"{text} {COLLAPSE_MARK}" if blind.get(path) else text

    keep = [i for i, (_, path, _) in enumerate(DISTANCES) if any(at_path(e, path) for _, e, _ in sets)]
    spaces = [i for i, (_, prefix) in enumerate(PRDC_SPACES) if any(at_path(e, prefix + "recall") for _, e, _ in sets)]
    distinct = [i for i, (_, path) in enumerate(DISTINCT_SPACES) if any(at_path(e, path) for _, e, _ in sets)]
    rows = [evaluation_row(*s) for s in sets]
    for r in rows:
        r["distances"] = [r["distances"][i] for i in keep]
        r["prdc"] = [r["prdc"][i * len(PRDC) + j] for i in spaces for j in range(len(PRDC))] + [r["distinct"][i] for i in distinct]
    return {"rows": rows, "distance_headers": [header(f"{DISTANCES[i][0]} [95% CI]", DISTANCES[i][1]) for i in keep],
            "prdc_headers": [header(f"{name}, {PRDC_SPACES[i][0]}", PRDC_SPACES[i][1] + name) for i in spaces for name in PRDC]
            + [header(f"distinct fraction, {DISTINCT_SPACES[i][0]}", DISTINCT_SPACES[i][1]) for i in distinct],
            "class_headers": list(CLASS_SCORES.values()) if any(r["classifier"] for r in rows) else [],
            "collapse": collapse and {"n": collapse["n"], "members": len(collapse["members"]),
                                      "blind": {path: len(labels) for path, labels in blind.items()}}}  # fmt: skip


def tradeoff_section(result: dict) -> dict:
    """The time-to-quality table: every step count against the full chain (cry_diffusion.tradeoff.compare)."""
    from .tradeoff import LABELS

    def diff(r, name):
        if r["difference"] is None:
            return "baseline"
        text = _with_interval(r["difference"][name], "+.3g")
        return text + " \u2020" if name == "fad" and not r["fad"].get("reliable", True) else text

    def margin(name):
        m = result.get("margins", {}).get(name)
        return f"{LABELS[name]} {_fmt(m, '.3g')}"

    rows = [{"steps": r["steps"], "sampler": r["sampler"] or "", "n": r["n"],
             "wall": _fmt(r["wall_seconds_per_audio_second"], ".3f"), "speedup": _fmt(r["speedup"], ".1f"),
             "kid": _with_interval(r.get("kid")), "kid_diff": diff(r, "kid"),
             "recall": _with_interval(r.get("recall"), ".2f"), "recall_diff": diff(r, "recall"),
             "coverage": _with_interval(r.get("coverage"), ".2f"), "coverage_diff": diff(r, "coverage"),
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
        return {"value": f"{_fmt(r['median'][f])} [{_fmt(lo)}, {_fmt(hi)}]", "inside": r["inside"][f],
                "spread": _fmt(ratio, ".2f"), "of": f"{r['with_value'][f]}/{r['n']}"}

    return {
        "figure": png_uri(figure), "steps": result["steps"], "n": result["n"], "percentiles": f"{low}th-{high}th",
        "band_pass": result.get("band_pass"),
        "features": [{"label": FEATURES[f], "range": "n/a" if ranges[f] is None else
                      f"{ranges[f][0]:.3g}-{ranges[f][1]:.3g}"} for f in PROGRESS_FEATURES],
        "rows": [{"step": r["step"], "minutes": _fmt(r["minutes"], ".3g"), "trained_on": r["trained_on"],
                  "fad": fad_text(r["fad"]),
                  "kid": _with_interval((r.get("level_normalised") or r).get("kid")),
                  "recall": _with_interval((r.get("level_normalised") or r).get("recall"), ".2f"),
                  "coverage": _with_interval((r.get("level_normalised") or r).get("coverage"), ".2f"),
                  "distinct": [distinct_text((r.get("distinct_fraction") or {}).get(space))
                               for space in ("in_domain", "pretrained")],
                  "medians": [median(r, f) for f in PROGRESS_FEATURES]}
                 for r in result["rows"]],
    }  # fmt: skip


def evaluation_section(evals: dict[str, dict], references: dict[str, dict], embedding: dict,
                       copies: dict[str, dict] | None = None) -> dict:  # fmt: skip
    """What the report says of one dataset's evaluation: the metrics tables, every generated set (system) and copy synthesis."""
    from .features import FEATURES
    from .generator import label

    e = next(iter(evals.values()))
    names = {"real": "real vs real (floor)", "tones": "tone sweeps (baseline)", "noise": "Gaussian noise (baseline)"}
    return {
        "embedding": embedding,
        "pretrained": {k: v for k, v in (e.get("pretrained") or {}).items() if k in ("name", "trained_on", "dim")} or None,
        "features": list(FEATURES.values()),
        "halves_from_train": e.get("halves_from_train", False),
        "copy_threshold": e["nearest_train"]["threshold"],
        **_metric_tables([(names["real"], references["real"], "real")]
                         + [(f"generated, {label(system)}", evals[system], "generated") for system in evals]
                         + [(label(name), c, "copy") for name, c in (copies or {}).items()]
                         + [(names[r], references[r], "baseline") for r in ("tones", "noise")],
                         references["real"].get("collapse")),
    }


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
                text = f"{_fmt(b.get('median'))} [{_fmt(b.get('low'))}, {_fmt(b.get('high'))}]"
                return {"text": text, "inside": b.get("inside")}

            rows.append({"route": route_label(route), "minutes": _fmt(checkpoint["elapsed_seconds"] / 60, ".1f"),
                         "train_steps": f"{checkpoint['step']:,}", "steps": s, "n": e["n"],
                         "kid": _with_interval(levelled.get("kid")), "recall": _with_interval(levelled.get("recall"), ".2f"),
                         "coverage": _with_interval(levelled.get("coverage"), ".2f"),
                         "voicing": band("voiced_fraction"), "f0": band("f0_mean_hz"), "f0_range": band("f0_range_hz"),
                         "cries": passed(checks),
                         "verdict": summary(checks, undecided(e, references["real"], references["tones"]))})  # fmt: skip
    return rows


def listening_section(result: dict, figure: str | Path) -> dict:
    """What listeners said (cry_diffusion.listening_analysis.analyse), formatted; `answers` 0: how to collect them."""
    from .listening_analysis import label
    def pct(x):
        return _fmt(None if x is None else 100 * x, ".0f") + "%"

    def rho(a):
        return "n/a (no variation)" if a["rho"] is None else f"{a['rho']:+.2f} [{_fmt(a['low'], '+.2f')}, {_fmt(a['high'], '+.2f')}]"

    category = result.get("category")
    return {
        "answers": result["answers"], "how_to_collect": result["how_to_collect"], "figure": png_uri(figure),
        "raters": len(result["raters"]), "included": result.get("included_raters", 0), "planned": result["raters_planned"],
        "excluded": result["excluded"], "exclusion": result["exclusion"], "kinds": result["kinds"],
        "confidence": result["confidence"], "clip_seconds": result["clip_seconds"], "loudness_matched": result["loudness_matched"],
        "afc": [{"label": r["label"], "n": r["n"], "k": r["picked_as_real"], "rate": f"{pct(r['rate'])} [{pct(r['low'])}, {pct(r['high'])}]",
                 "p": _fmt(r["p_value"], ".2g"), "attention": r["attention"], "raters_n": r["raters"], "clips": r["clips"]}
                for r in result["afc"] or []],
        "mos": [{"label": r["label"], "mean": f"{r['mean']:.2f} [{_fmt(r['low'], '.2f')}, {_fmt(r['high'], '.2f')}]",
                 "n": r["n"], "raters": r["raters"], "clips": r["clips"], "system": r["system"]} for r in result["mos"] or []],
        "alpha": [{"kind": kind, "system": label(system), "alpha": _fmt(v, ".2f")}
                  for kind, by_system in result["alpha"].items() for system, v in by_system.items()],
        "drawn": result.get("raters_drawn", 0),
        "category": category and {"categories": category["categories"],
                                  "sides": [{"side": side, **category[side]} for side in ("real", "generated") if side in category]},
        "agreement": [{**a, "rho": rho(a)} for a in result["agreement"]],
    }  # fmt: skip


def utility_section(result: dict, figure: str | Path) -> dict:
    """Does synthetic data help? (cry_diffusion.utility, as utility.json holds it)."""
    if result.get("skipped"):
        return {"skipped": result["skipped"], "route": result["route"], "figure": png_uri(figure)}

    def uar(r):
        return _with_interval(r["uar"], ".2f")

    rows = [{"name": {"trtr": "real only (TRTR)", "tstr": "generated only (TSTR)"}.get(r["name"], f"real + generated, {r['name']}"),
             "fraction": f"{r['fraction']:g}", "real": r["sizes"][0]["real"], "generated": r["sizes"][0]["generated"],
             "uar": uar(r), "accuracy": _fmt(r["accuracy"], ".2f"),
             "difference": "baseline" if r["difference"] is None else _with_interval(r["difference"], "+.2f"),
             "effect": r["effect"]} for r in result["rows"]]  # fmt: skip
    unseen = [{"category": u["category"], "n_ref": u["n_ref"], "nearest": u["nearest_other"],
               "sets": [{"name": name, "n": s["n"], "recall": _with_interval(s["recall"], ".2f"),
                         "coverage": _with_interval(s["coverage"], ".2f"),
                         "assigned": ", ".join(f"{c} {100 * v:.0f}%" for c, v in s["assigned"].items() if v)}
                        for name, s in u["sets"].items()]} for u in result.get("unseen", [])]  # fmt: skip
    return {"skipped": None, "route": result["route"], "figure": png_uri(figure), "rows": rows, "unseen": unseen,
            "verdict": result["verdict"], "chance": f"{result['chance']:.2f}", "classes": result["classes"],
            "test": f"{result['test_clips']} clips of {result['test_recordings']} recordings",
            "train": f"{result['train_clips']} clips of {result['train_recordings']} recordings",
            "seeds": result["params"]["seeds"], "confidence": result["params"]["confidence"]}
