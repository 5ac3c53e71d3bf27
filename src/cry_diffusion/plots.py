"""Figures for the report and the paper: mel grids, data histograms, training curves.

Every function takes data and a path, draws with matplotlib's Agg backend and
saves atomically (PNG, or PDF when the path says so).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .atomic import atomic_path  # noqa: E402
from .mel import MelParams  # noqa: E402


def save(fig, *paths: str | Path) -> None:
    """The figure written to each path (PNG, PDF: by the suffix), then closed."""
    for path in paths:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight")
        # the layout the first file was drawn with, kept for the next: constrained layout would solve it again at
        # every draw, and on the 30-panel quality figure that was most of its time
        fig.set_layout_engine("none")
    plt.close(fig)


def mel_grid(mels: list[np.ndarray], titles: list[str], path: str | Path, params: MelParams = MelParams(),
             columns: int = 5, suptitle: str | None = None) -> None:  # fmt: skip
    """Log-mel spectrograms side by side, on one colour scale so loudness compares across panels."""
    rows = max(1, -(-len(mels) // columns))
    cols = min(columns, max(1, len(mels)))
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.5 * rows + 0.4), squeeze=False, layout="constrained")
    finite = [m for m in mels if m.size]
    vmin = min((float(m.min()) for m in finite), default=-11.5)
    vmax = max((float(m.max()) for m in finite), default=0.0)
    for ax in axes.flat:
        ax.set_visible(False)
    for ax, mel, title in zip(axes.flat, mels, titles):
        ax.set_visible(True)
        seconds = mel.shape[-1] * params.hop_ms / 1000
        image = ax.imshow(mel, origin="lower", aspect="auto", vmin=vmin, vmax=vmax, cmap="magma",
                          extent=(0, seconds, 0, params.n_mels))  # fmt: skip
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("time (s)", fontsize=8)
        ax.set_ylabel("mel band", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.colorbar(image, ax=axes, shrink=0.8, label="log mel magnitude")
    if suptitle:
        fig.suptitle(suptitle)
    save(fig, path)


def durations(manifest: pd.DataFrame, path: str | Path) -> None:
    """Histogram of source-file durations, accepted against rejected (files only, not annotation rows)."""
    files = manifest[manifest["row"] == "file"] if "row" in manifest else manifest
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    for status, colour in (("ok", "tab:blue"), ("rejected", "tab:red")):
        values = files.loc[files["status"] == status, "duration_s"].dropna()
        if len(values):
            ax.hist(values, bins=20, alpha=0.7, color=colour, label=f"{status} ({len(values)})")
    ax.set_xlabel("duration (s)")
    ax.set_ylabel("files")
    ax.set_title("source file durations")
    ax.legend()
    save(fig, path)


def categories(segments: pd.DataFrame, path: str | Path) -> None:
    """Segments per category, stacked by split."""
    table = segments.assign(category=segments["category"].fillna("").replace("", "(none)"))
    counts = table.groupby(["category", "split"]).size().unstack(fill_value=0)
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    bottom = np.zeros(len(counts))
    for split in counts.columns:
        ax.bar(counts.index, counts[split], bottom=bottom, label=split)
        bottom += counts[split].to_numpy()
    ax.set_ylabel("segments")
    ax.set_title("segments per category")
    ax.legend()
    ax.tick_params(axis="x", rotation=30)
    save(fig, path)


def loss_curve(history: pd.DataFrame, path: str | Path) -> None:
    """Training loss per step with a running mean, log scale: the curve of a diffusion loss is long-tailed."""
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    ax.plot(history["step"], history["loss"], alpha=0.35, lw=0.8, label="loss")
    window = max(1, len(history) // 20)
    ax.plot(history["step"], history["loss"].rolling(window, min_periods=1).mean(), lw=1.5, label=f"mean of {window}")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss: MSE of the prediction (noise, or v)")
    ax.legend()
    save(fig, path)
