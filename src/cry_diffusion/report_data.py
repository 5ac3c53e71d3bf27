"""What the report says of a dataset's data: the ingest and segment stages' accounting, and real cries to hear.

    from cry_diffusion import report_data
    section = report_data.data_section("embedded", manifest, table, summary, segments, figures)
    section["real"] = report_data.real_cards([("pain #3", segments[3])])
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .report import mel_png_uri, png_uri, wav_uri


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
        "evaluation": None,  # filled in by report_evaluation.evaluation_section
        "devices": None,  # filled in by report_devices.stage_devices
    }


def real_cards(real: list[tuple[str, np.ndarray]], mel_params=None) -> list[dict]:
    """Playable real segments, each with its mel, to hear beside the generated ones."""
    return [{"label": label, "audio": wav_uri(x), "mel": mel_png_uri(x, mel_params)} for label, x in real]
