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
    """What the report says of one dataset's data stages."""
    status = manifest["status"].value_counts()
    not_ok = manifest[manifest["status"] != "ok"]
    by_reason = (
        not_ok.assign(kind=not_ok["reason"].map(reason_kind))
        .groupby(["status", "kind"]).size().reset_index(name="files")
        .to_dict("records")
    )  # fmt: skip
    ok = manifest[manifest["status"] == "ok"]
    band_limited_s = float(ok.loc[ok["band_limited"], "duration_s"].sum())
    picks = pick_examples(table, examples)
    return {
        "name": name,
        "files": {"found": len(manifest), **{k: int(status.get(k, 0)) for k in ("ok", "rejected", "skipped")}},
        "by_reason": by_reason,
        "problems": not_ok[["relpath", "status", "reason"]].head(50).to_dict("records"),
        "problems_more": max(0, len(not_ok) - 50),
        "summary": summary,
        # Resampling may round each file's length by a sample or two; anything beyond is a real loss.
        "reconciles": abs(summary["unexplained_seconds"]) <= 2 * summary["files_ok"] / SAMPLE_RATE + 1e-6,
        "band_limited_share": band_limited_s / summary["seconds_in"] if summary["seconds_in"] else 0.0,
        "categories": table.assign(category=table["category"].replace("", "(none)"))
        .groupby(["category", "split"]).size().unstack(fill_value=0).reset_index().to_dict("records"),
        "figures": {key: png_uri(path) for key, path in figures.items()},
        "examples": [
            {"label": f"{r.category or 'segment'} #{r.index}", "source": Path(r.path).name, "start_s": r.start_s,
             "audio": wav_uri(segments[r.index])}  # fmt: skip
            for r in picks.itertuples()
        ],
    }


def render(datasets: list[dict], out_path: str | Path, config: dict | None = None) -> None:
    html = _TEMPLATES.get_template("report.html.j2").render(
        datasets=datasets,
        config=config or {},
        version=__version__,
        generated=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    )
    write_text(out_path, html)
