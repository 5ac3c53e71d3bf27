"""Which training levers buy quality per minute on a CPU: each trained for the same wall time, on several seeds.

Every lever is one change to a base recipe (benchmarks/cries-cpu.yaml's model with DiffWave's
plain training: noise prediction, equal loss weights, a constant rate). Each run first times a
few steps, then trains as many steps as fit `--minutes` (equal wall time, not equal steps: a
lever that makes steps dearer pays for it), samples `--n` one-second clips with 12 steps of
DPM-Solver++(2M) (JUDGE below says why not 200), and is judged as the pipeline judges
(cry_diffusion.evaluate.score) against held-out real clips: level-normalised KID in the
in-domain embedding (with its bootstrap interval), recall and coverage (fidelity and
diversity apart), and cry_diffusion.progress's band checks of f0 and voicing. The last
table compares few-step chains on the last lever's first seed.

It needs the pipeline's real side of the comparison once (corpus, segments, embedding, reference):

    snakemake --cores 2 --configfile benchmarks/cries-cpu.yaml -- results/embedded/evaluation/reference.npz
    python benchmarks/levers.py      # 6 levers x 2 seeds x (45 s training + about 35 s probe and judging): ~17 min
    python benchmarks/levers.py --minutes 10 --threads 1 --levers plain recipe --json levers.json

docs/performance.md has the tables of `--minutes 2.5` (every lever) and `--minutes 10` (plain and
the combined recipe), each on one thread beside the one-hour run.
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path

import _bench
import numpy as np
import torch
import yaml

from cry_diffusion import evaluate, progress
from cry_diffusion.evaluate import Reference
from cry_diffusion.generate import generate
from cry_diffusion.train_dataset import train_dataset

# one change each to the base recipe; "recipe" is the set benchmarks/cries-cpu.yaml chose
LEVERS = {
    "plain": {},
    "min_snr": {"train": {"min_snr_gamma": 5.0}},
    "v": {"diffusion": {"prediction": "v"}},
    "v_min_snr": {"diffusion": {"prediction": "v"}, "train": {"min_snr_gamma": 5.0}},
    "warmup_cosine": {"train": {"warmup_steps": 200, "lr_schedule": "cosine"}},
    "lr_low": {"train": {"learning_rate": 2.5e-4}},
    "ema_fast": {"train": {"ema_decay": 0.99}},
    "crop_1s": {"train": {"crop_seconds": 1.0, "batch_size": 2}},  # the same samples per step as 0.25 s x 8
    "shape_deep": {"model": {"residual_layers": 20, "residual_channels": 24}},
    "recipe": {"diffusion": {"prediction": "v"}, "train": {"min_snr_gamma": 5.0, "warmup_steps": 200,
                                                           "lr_schedule": "cosine"}},
}
DEFAULT = ["plain", "min_snr", "v", "warmup_cosine", "crop_1s", "shape_deep"]  # each lever alone, once
# DiffWave's training defaults, which the base recipe keeps apart from the model's size and the rate
PLAIN_TRAIN = {"prediction": "eps", "min_snr_gamma": 0.0, "warmup_steps": 0, "lr_schedule": "constant"}
# Each run is judged on 12 steps of DPM-Solver++(2M): the 200-step chain costs 17x as much (about 9 minutes for
# 32 one-second clips on 2 cores), the pipeline's tradeoff table compares the chains with it on the chosen recipe
JUDGE = (12, "dpmpp2m")
CHAINS = [JUDGE, (6, "ddim"), (7, "ddim"), (8, "ddim"), (8, "dpmpp2m"), (25, "dpmpp2m")]


def merged(base: dict, change: dict) -> dict:
    out = copy.deepcopy(base)
    for section, values in change.items():
        out.setdefault(section, {}).update(values)
    return out


def base_config(path: Path) -> dict:
    cfg = yaml.safe_load(path.read_text())
    base = {"model": dict(cfg.get("model", {})), "diffusion": dict(cfg.get("diffusion", {})), "train": dict(cfg.get("train", {}))}
    base["model"].pop("conditional", None)
    base["diffusion"]["prediction"] = PLAIN_TRAIN["prediction"]
    base["train"].update({k: v for k, v in PLAIN_TRAIN.items() if k != "prediction"})
    for k in ("steps", "checkpoint_every", "snapshot_every", "log_every", "gpus"):
        base["train"].pop(k, None)
    return base


def judge(audio: np.ndarray, ref: Reference, bundle: dict, ranges: dict) -> dict:
    s = evaluate.score(ref, bundle, audio)
    lvl = s["level_normalised"]
    checks = progress.band_checks(s["features"], ranges, len(audio), ref.params, real=ref.ref_features)
    return {"kid": lvl["kid"], "recall": lvl["recall"], "coverage": lvl["coverage"], "fad": s["fad"]} | {
        name: checks[name] for name in ("f0_mean_hz", "voiced_fraction", "f0_range_hz")}


def run(name: str, change: dict, seed: int, base: dict, data: Path, minutes: float, threads: int, n: int,
        ref: Reference, bundle: dict, ranges: dict, work: Path, chains: bool) -> dict:
    cfg = merged(base, change)
    cfg["train"] |= {"seed": seed, "log_every": 10_000, "checkpoint_every": 10_000}
    folder = work / f"{name}-{seed}"
    common = dict(segments_npy=data / "segments.npy", table_csv=data / "segments.csv", model_config=cfg["model"],
                  diffusion_config=cfg["diffusion"], device="cpu", threads=threads)
    # the rate on this machine: 60 steps less 10 (which carry the set-up), on the same model
    took = []
    for probe in (10, 60):
        t0 = time.perf_counter()
        train_dataset(out_path=folder / f"probe{probe}.pt", loss_csv=folder / f"probe{probe}.csv",
                      checkpoint_root=folder / f"probe{probe}", train_config=cfg["train"] | {"steps": probe}, **common)
        took.append(time.perf_counter() - t0)
    steps = max(50, round(50 * minutes * 60 / max(took[1] - took[0], 1e-3)))
    t0 = time.perf_counter()
    model = train_dataset(out_path=folder / "model.pt", loss_csv=folder / "loss.csv", checkpoint_root=folder / "ckpt",
                          train_config=cfg["train"] | {"steps": steps}, **common)
    trained = time.perf_counter() - t0
    out = {"lever": name, "seed": seed, "steps": steps, "train_minutes": trained / 60}
    for steps_, solver in CHAINS if chains else CHAINS[:1]:
        audio, info = generate(model, n, 1.0, steps_, seed=seed, device="cpu", threads=threads, solver=solver)
        out.setdefault("chains", []).append({"steps": steps_, "sampler": info["sampler"],
                                             "wall_s_per_audio_s": info["wall_seconds_per_audio_second"],
                                             **judge(audio, ref, bundle, ranges)})
    return out


def fmt(v: dict, digits=2) -> str:
    return f"{v['value']:.{digits}f} [{v['low']:.{digits}f}, {v['high']:.{digits}f}]"


def band(b: dict) -> str:
    return "none voiced" if b["median"] is None else f"{b['median']:.3g}{'' if b['inside'] else ' (out)'}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", default=str(_bench.ROOT / "results"))
    ap.add_argument("--dataset", default="embedded")
    ap.add_argument("--config", default=str(_bench.ROOT / "benchmarks" / "cries-cpu.yaml"), help="the base recipe's model and rate")
    ap.add_argument("--levers", nargs="+", default=DEFAULT, choices=list(LEVERS))
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--minutes", type=float, default=0.75, help="training wall time per run")
    ap.add_argument("--threads", type=int, default=0, help="torch threads per run (0: all cores)")
    ap.add_argument("--n", type=int, default=32, help="clips generated per run")
    ap.add_argument("--json", help="also write every run's figures here")
    a = ap.parse_args()
    data = Path(a.results) / a.dataset
    if not (data / "evaluation" / "reference.npz").exists():
        raise SystemExit(f"no {data}/evaluation/reference.npz: build it first (see this script's --help)")
    if a.threads:
        torch.set_num_threads(a.threads)
    ref = Reference.load(data / "evaluation" / "reference.npz", "cpu")
    bundle = torch.load(data / "embedding.pt", map_location="cpu", weights_only=True)
    ranges = progress.real_ranges(ref)
    base = base_config(Path(a.config))
    floor = judge(ref.floor_audio, ref, bundle, ranges)
    tones = judge(evaluate.tone_sweeps(ref.floor_audio, a.n, 0), ref, bundle, ranges)
    print(f"{a.dataset}: {a.minutes} min of training per run, {a.seeds} seeds, {a.n} clips of 1 s, "
          f"torch threads {torch.get_num_threads()}; base recipe {json.dumps(base)}\n")
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.levers:
            for seed in range(a.seeds):
                r = run(name, LEVERS[name], seed, base, data, a.minutes, a.threads, a.n, ref, bundle, ranges,
                        Path(tmp), chains=name == a.levers[-1] and seed == 0)
                runs.append(r)
                c = r["chains"][0]
                print(f"  {name} seed {seed}: {r['steps']} steps in {r['train_minutes']:.1f} min, KID {fmt(c['kid'])}, "
                      f"recall {c['recall']['value']:.2f}, coverage {c['coverage']['value']:.2f}", flush=True)
    rows = [["real floor", "", "", fmt(floor["kid"]), f"{floor['recall']['value']:.2f}",
             f"{floor['coverage']['value']:.2f}", band(floor["f0_mean_hz"]), band(floor["voiced_fraction"]),
             band(floor["f0_range_hz"])],
            ["tone sweeps", "", "", fmt(tones["kid"]), f"{tones['recall']['value']:.2f}",
             f"{tones['coverage']['value']:.2f}", band(tones["f0_mean_hz"]), band(tones["voiced_fraction"]),
             band(tones["f0_range_hz"])]]
    for r in runs:
        c = r["chains"][0]
        rows.append([r["lever"], r["seed"], r["steps"], fmt(c["kid"]), f"{c['recall']['value']:.2f}",
                     f"{c['coverage']['value']:.2f}", band(c["f0_mean_hz"]), band(c["voiced_fraction"]),
                     band(c["f0_range_hz"])])
    print(f"\n{JUDGE[0]} steps of {JUDGE[1]}; KID level-normalised, in-domain embedding [95% CI]; f0 and voicing: median of "
          "the clips, (out) where the band check fails\n")
    print(_bench.table(rows, ["lever", "seed", "steps", "KID", "recall", "coverage", "f0 Hz", "voiced", "f0 range Hz"]))
    last = next(r for r in runs if len(r["chains"]) > 1)
    print(f"\nfew-step chains, {last['lever']} seed {last['seed']}:\n")
    print(_bench.table([[c["steps"], c["sampler"], f"{c['wall_s_per_audio_s']:.2f}", fmt(c["kid"]),
                         f"{c['recall']['value']:.2f}", f"{c['coverage']['value']:.2f}", band(c["voiced_fraction"])]
                        for c in last["chains"]],
                       ["steps", "sampler", "wall s / audio s", "KID", "recall", "coverage", "voiced"]))
    if a.json:
        Path(a.json).write_text(json.dumps({"args": vars(a), "floor": floor, "tones": tones, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
