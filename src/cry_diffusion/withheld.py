"""A category the generator never saw: the run's generator trained again without it, and clips from it.

The paper asks whether generated cries reach held-out and unseen categories. For each category
`utility.withhold` names, the run's generator is trained again on the training split less that
category's segments (they move to a side of their own, "withheld", which training never reads),
and makes as many clips as the category has held out, unconditionally (it has no label for the
category). cry_diffusion.utility measures how near those clips come to the category's real ones.

    from cry_diffusion import withheld
    withheld.train_without("segments.csv", "mels.npy", "pain", "out/pain", "mel-griffin_lim", "checkpoints", ...)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import segment
from .atomic import atomic_path, write_text


def table_without(table, category: str):
    """The segment table with `category`'s training segments moved to a side of their own ("withheld"): train on it,
    and the category never reaches the generator (cry_diffusion.train_dataset takes the "train" side only)."""
    table = table.copy()
    table.loc[(table["split"] == "train") & (table["category"] == category), "split"] = "withheld"
    return table


def categories(setting, names: list[str]) -> list[str]:
    """The categories `utility.withhold` names among a dataset's `names`: "first" (by name), "all", "none", or a list."""
    names = sorted(names)
    if setting in (None, "none") or len(names) < 2:
        return []
    if setting == "first":
        return names[:1]
    if setting == "all":
        return names
    wanted = [setting] if isinstance(setting, str) else list(setting)
    return [c for c in wanted if c in names]


def train_without(table_csv, data_npy, category: str, folder, route: str, checkpoint_root, model_config: dict,
                  diffusion_config: dict, train_config: dict, mel_config: dict, sampling: dict, vocoder: dict | None = None,
                  device="auto", threads: int = 0) -> Path:  # fmt: skip
    """The route's generator trained without `category` (into `folder`), and as many clips from it as the category
    has held out (at least 2), unconditional: folder/{segments.csv, model.pt, loss.csv, samples.npy, info.json}.

    data_npy: segments.npy (waveform) or mels.npy (mel routes); the *_config: the route's training sections;
    sampling: cry_diffusion.generate.generate's keyword arguments (n and labels are set here).
    """
    from .generator import generate
    from .mel_prior_train import train_prior
    from .train_dataset import train_dataset

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    table = segment.read_table(table_csv)
    table_without(table, category).to_csv(folder / "segments.csv", index=False)
    common = dict(table_csv=folder / "segments.csv", out_path=folder / "model.pt", loss_csv=folder / "loss.csv",
                  checkpoint_root=checkpoint_root, model_config=model_config, diffusion_config=diffusion_config,
                  train_config=train_config, device=device, threads=threads)  # fmt: skip
    if route == "waveform":
        train_dataset(segments_npy=data_npy, **common)
    else:
        train_prior(mels_npy=data_npy, mel_config=mel_config, **common)
    n = max(2, int(((table["split"] == "heldout") & (table["category"] == category)).sum()))
    audio, info = generate(route, folder / "model.pt", vocoder=vocoder, **(sampling | {"n": n, "labels": None}))
    with atomic_path(folder / "samples.npy") as tmp:
        np.save(tmp, audio)
    write_text(folder / "info.json", json.dumps({"category": category, "route": route} | info, indent=1))
    return folder
