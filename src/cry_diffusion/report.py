"""The HTML report: one self-contained page, figures and audio embedded, opened with no server.

The report_* modules build each dataset's sections (report_data, report_routes, report_evaluation,
report_devices, report_listening, report_utility); this one embeds figures and audio as data URIs
and renders the page. The pipeline's `report` rule calls

    from cry_diffusion import report, report_data
    section = report_data.data_section("embedded", manifest, table, summary, segments, figures)
    report.render([section], "report.html")
"""

from __future__ import annotations

import base64
import datetime
import io
from pathlib import Path

import jinja2
import numpy as np
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


def mel_png_uri(audio: np.ndarray, params=None) -> str:
    """A small log-mel picture of one clip, drawn straight to PNG (no axes: it sits on a card)."""
    import matplotlib.pyplot as plt

    from .mel import MelParams, log_mel

    mel = log_mel(np.asarray(audio, np.float32), params or MelParams())
    buffer = io.BytesIO()
    plt.imsave(buffer, mel[::-1], cmap="magma", vmin=np.log(1e-5), vmax=max(float(mel.max()), -4.0), format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def render(datasets: list[dict], out_path: str | Path, config: dict | None = None) -> None:
    html = _TEMPLATES.get_template("report.html.j2").render(
        datasets=datasets,
        config=config or {},
        version=__version__,
        generated=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    )
    write_text(out_path, html)
