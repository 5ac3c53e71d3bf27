"""What the report says of a dataset's evaluation: the metrics tables, every generated set, copy synthesis, the baselines.

    from cry_diffusion import report_evaluation
    section["evaluation"] = report_evaluation.evaluation_section(evals, references, embedding, copies)
"""

from __future__ import annotations

from .report_format import distinct_text, fad_text, fmt, with_interval

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
        "distances": [fad_text(at_path(e, path)) if is_fad else with_interval(at_path(e, path)) for _, path, is_fad in DISTANCES],
        "prdc": [with_interval(at_path(e, prefix + name), ".2f") for _, prefix in PRDC_SPACES for name in PRDC],
        "distinct": [distinct_text(at_path(e, path)) for _, path in DISTINCT_SPACES],
        "collapsed": any((at_path(e, path) or {}).get("below_real") for _, path in DISTINCT_SPACES),
        "classifier": None if not classifier else [with_interval(classifier[k]) for k in CLASS_SCORES],
        "ndb": f"{e['ndb']['ndb']}/{e['ndb']['bins']}",
        "pairwise": f"{fmt(e['pairwise'])} / {fmt(e['pairwise_real'])}",
        "nearest": f"{nn['median']:.3g} (real {nn['real_median']:.3g})",
        "copies": f"{nn['near_copies']}/{e['n']}",
        "mel_copies": f"{mel_nn['near_copies']}/{e['n']}" if mel_nn else "n/a",
        "accuracy": fmt(e["accuracy"], ".2f"),
        "wall": fmt(e.get("wall_seconds_per_audio_second"), ".3f"),
        "w1": [fmt(v) for v in e["wasserstein"].values()],
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
