"""The cases that fool metrics, and what each of the project's measures gives on them (docs/evaluation.md).

Real side: synthetic cries from the embedded corpus's synthesiser (cry_diffusion.synth_cry),
a classifier embedding trained on the training clips exactly as the pipeline trains it,
and a reference built as the `reference` rule builds it. Then each constructed set is
scored as the `evaluate` rule scores a generated one:

- real: held-out clips (the floor), and tone sweeps and Gaussian noise (the ceilings);
- collapsed: 4 held-out clips, each repeated; time-reversed: the floor played backwards;
- 6 dB quieter: the floor at half amplitude;
- the collapse family at 8 and 32 clips (2 to 6 clips repeated, exactly and with noise at
  30 dB SNR): which measures let each one through;
- copies: training clips at -12 to +6 dB, and with noise at 30 dB SNR.

And on Gaussian sets with known answers: FAD's bias at small n (plug-in, bootstrap
correction, FID-infinity), the narrow-versus-shifted verdict, DDIM's level loss per
step spacing with the best possible denoiser, and DPM-Solver++(2M)'s and DiffWave's
fast chains' with the same denoiser.

    python benchmarks/fooling.py              # about 10 minutes on 2 CPU cores
    python benchmarks/fooling.py --quick      # fewer clips and trials, about 4 minutes
    python benchmarks/fooling.py --smoke      # every section at its smallest: a check that it runs (the tests)
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import _bench  # noqa: E402

from cry_diffusion import collapse, distances, evaluate, pretrained  # noqa: E402
from cry_diffusion.embedding import EmbeddingParams, train_embedding  # noqa: E402
from cry_diffusion.progress import w1_interval  # noqa: E402
from cry_diffusion.synth_cry import synthesize_cry  # noqa: E402
from cry_diffusion.synth_params import CATEGORIES  # noqa: E402
from cry_diffusion.tradeoff import compare, evaluation_of  # noqa: E402


def cries(n: int, seed0: int) -> tuple[np.ndarray, list[str]]:
    labels = [CATEGORIES[k % len(CATEGORIES)] for k in range(n)]
    return np.stack([synthesize_cry(c, 1.0, seed=seed0 + k) for k, c in enumerate(labels)]).astype(np.float32), labels


def fmt(d, spec=".3g") -> str:
    if d is None or d.get("value") is None:
        return "n/a"
    dagger = " †" if d.get("reliable") is False else ""
    return f"{d['value']:{spec}} [{d['low']:{spec}}, {d['high']:{spec}}]{dagger}"


def real_cases(n_train: int, n_held: int, p: distances.EvalParams, epochs: int, gains: tuple) -> None:
    train, labels = cries(n_train, 0)
    held, held_labels = cries(n_held, 10_000)
    bundle, info = train_embedding(train, labels, EmbeddingParams(epochs=epochs))
    ref = evaluate.Reference.build(bundle, train, held, p, "cpu", train_labels=labels, heldout_labels=held_labels,
                                   clip_samples=train.shape[1], n_floor=min(32, n_held // 2))  # the quality configs' 32
    floor = ref.floor_audio
    n = len(floor)
    sets = {
        "real held-out (floor)": floor,
        "collapsed: 4 clips repeated": np.concatenate([floor[:4]] * math.ceil(n / 4))[:n],
        "time-reversed": floor[:, ::-1].copy(),
        "6 dB quieter": floor * 10 ** (-6 / 20),
        "tone sweeps": evaluate.tone_sweeps(floor, n, 1),
        "Gaussian noise": evaluate.noise_like(floor, n, 1),
    }
    print(f"\n## Constructed sets: {n} clips each against {len(ref.ref)} held-out reference clips "
          f"({n_train} training clips, classifier embedding {info['classes']}, {p.bootstrap} bootstrap resamples)\n")
    head = ["set", "FAD", "FAD level-norm.", "KID", "KID level-norm.", "precision", "recall", "coverage", "density",
            "distinct", "IS", "histogram KL", "W1 onset skew", "W1 level (dB)"]
    if pretrained.available():
        head += ["GE2E FAD", "GE2E KID", "GE2E KID level-norm.", "GE2E recall", "GE2E coverage", "GE2E distinct"]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for name, audio in sets.items():
        s = evaluate.score(ref, bundle, audio)
        lv, c = s["level_normalised"], s["classifier"] or {}
        skew = w1_interval(s["features"]["onset_skew"], ref.ref_features["onset_skew"], p)
        level = w1_interval(s["features"]["rms_mean_db"], ref.ref_features["rms_mean_db"], p)
        distinct = s["distinct_fraction"]
        row = [name, fmt(s["fad"]), fmt(lv["fad"]), fmt(s["kid"]), fmt(lv["kid"]), fmt(s["precision"], ".2f"),
               fmt(s["recall"], ".2f"), fmt(s["coverage"], ".2f"), fmt(s["density"], ".2f"),
               fmt(distinct["in_domain"], ".2f"), fmt(c.get("inception_score"), ".2f"), fmt(c.get("histogram_kl"), ".2f"),
               fmt(skew, ".2f"), fmt(level, ".2f")]
        if s["pretrained"]:
            g = s["pretrained"]
            row += [fmt(g["fad"]), fmt(g["kid"]), fmt(g["level_normalised"]["kid"]), fmt(g["recall"], ".2f"),
                    fmt(g["coverage"], ".2f"), fmt(distinct["pretrained"], ".2f")]
        print("| " + " | ".join(row) + " |")

    collapse_family(ref, bundle, floor)

    print(f"\n## Planted copies of training clips ({len(train)} training clips): found / planted, in each space\n")
    print("| copies | embedding (level-normalised) | log-mel windows (gain taken out) |\n|---|---|---|")
    for gain in gains:
        for noisy in (False, True):
            x = np.clip(train[:8] * 10 ** (gain / 20), -1, 1)
            x = collapse.with_noise(x, 30, int(10 * gain) + 1000) if noisy else x
            s = evaluate.score(ref, bundle, x)
            print(f"| {gain:+g} dB{' + noise at 30 dB SNR' if noisy else ''} | {s['nearest_train']['near_copies']}/8 "
                  f"| {s['nearest_train_mel']['near_copies']}/8 |")
    s = evaluate.score(ref, bundle, held[:8])
    print(f"| unseen held-out cries (false alarms) | {s['nearest_train']['near_copies']}/8 | "
          f"{s['nearest_train_mel']['near_copies']}/8 |")


# The collapse family's table: measures shown, by the dotted path collapse.COLLAPSE_MEASURES names them
FAMILY_COLUMNS = {"distinct_fraction.in_domain": "distinct", "distinct_fraction.pretrained": "GE2E distinct",
                  "level_normalised.recall": "recall", "level_normalised.coverage": "coverage",
                  "level_normalised.kid": "KID", "level_normalised.fad": "FAD", "pretrained.level_normalised.recall": "GE2E recall",
                  "pretrained.level_normalised.kid": "GE2E KID"}  # fmt: skip


def collapse_family(ref: evaluate.Reference, bundle: dict, floor: np.ndarray) -> None:
    """For 8 clips and the whole floor: which measures tell each member of the collapse family from the floor."""
    for n in sorted({8, len(floor)}):
        result = collapse.collapse_blind_spots(ref, bundle, floor[:n])
        columns = {k: v for k, v in FAMILY_COLUMNS.items() if k in collapse.COLLAPSE_MEASURES and
                   (k.startswith("distinct_fraction.in") or not k.count("pretrained") or ref.ref_pretrained.size)}
        print(f"\n## The collapse family at {n} clips (k = {distances.PRDC_K}): 'yes' where the measure tells it from the "
              f"real floor ({len(ref.ref)} reference clips; level-normalised)\n")
        print("| set | " + " | ".join(columns.values()) + " |\n|---|" + "---|" * len(columns))
        for member in result["members"]:
            seen = ["no" if member in result["blind"].get(path, []) else "yes" for path in columns]
            print(f"| {member} | " + " | ".join(seen) + " |")


def gaussian_cases(trials: int) -> None:
    rng = np.random.default_rng(0)
    print(f"\n## FAD's bias at small n: Gaussian sets, both N(0, I), true distance 0, {trials} trials (mean [2.5th, 97.5th pct])\n")
    print("| clips per set | dimensions | plug-in | bootstrap-corrected | FID-infinity (the point value now) |\n|---|---|---|---|---|")
    p = distances.EvalParams(bootstrap=100)
    for n, dim in ((24, 32), (48, 32), (96, 32)):
        plug, boot, inf = [], [], []
        for _ in range(trials):
            a, b = rng.standard_normal((n, dim)), rng.standard_normal((n, dim))
            plug.append(distances.frechet(a, b))
            r = np.random.default_rng(int(rng.integers(1 << 30)))
            reps = [distances.frechet(a[r.integers(0, n, n)], b[r.integers(0, n, n)]) for _ in range(p.bootstrap)]
            boot.append(2 * plug[-1] - np.mean(reps))
            inf.append(distances.fd_infinity(a, b, int(rng.integers(1 << 30))))
        cell = lambda v: f"{np.mean(v):.1f} [{np.percentile(v, 2.5):.1f}, {np.percentile(v, 97.5):.1f}]"  # noqa: E731
        print(f"| {n} | {dim} | {cell(plug)} | {cell(boot)} | {cell(inf)} |")

    print(f"\n## Narrow (variance 0.25) against mean-shifted, both at true FD 8; 32 clips against 22 in 32-d, {trials} trials\n")
    from cry_diffusion.features import FEATURES

    said = {"FAD difference below 0 (narrow 'better')": 0, "verdict: narrow better": 0, "verdict: narrow worse": 0}
    for _ in range(trials):
        ref = rng.standard_normal((22, 32))
        feats = {name: rng.standard_normal(22).tolist() for name in FEATURES}
        shift = np.zeros(32)
        shift[:8] = 1.0
        near = 0.5 * float(distances.distances(ref, ref)[np.triu_indices(22, 1)].min())  # no two reference clips this close
        evals = {steps: evaluation_of(e, {name: rng.standard_normal(32).tolist() for name in FEATURES}, ref, feats, near,
                                      wall_seconds_per_audio_second=1.0)
                 for steps, e in ((7, 0.5 * rng.standard_normal((32, 32))), (200, rng.standard_normal((32, 32)) + shift))}
        row = [r for r in compare(evals, ref, feats, p, paired=False)["rows"] if r["steps"] == 7][0]
        said["FAD difference below 0 (narrow 'better')"] += row["difference"]["fad"]["high"] < 0
        said["verdict: narrow better"] += row["better"]
        said["verdict: narrow worse"] += row["verdict"] == "worse"
    for k, v in said.items():
        print(f"- {k}: {v} of {trials}")

    import torch

    from cry_diffusion.diffusion import DiffusionParams, betas, sample
    from torch import nn

    class Best(nn.Module):
        """The best possible noise estimate for white-noise audio of std s (tests/test_diffusion.py)."""

        def __init__(self, s, params):
            super().__init__()
            self.s, self.root = s, torch.cumprod(1 - betas(params), 0).sqrt()

        def forward(self, x, t, label=None):
            lo = t.double().floor().long().clamp(max=len(self.root) - 2)
            abar = ((self.root[lo] + (t.double() - lo) * (self.root[lo + 1] - self.root[lo])) ** 2).float()[:, None]
            return (1 - abar).sqrt() * x / (abar * self.s**2 + 1 - abar)

    P = DiffusionParams()

    def level(s, sampler, steps, spacing="logsnr"):
        out = sample(Best(s, P), P, 64, 2000, sampler=sampler, steps=steps, device="cpu",
                     generator=torch.Generator().manual_seed(0), ddim_spacing=spacing)
        return f"{20 * math.log10(float(out.std()) / s):+.1f}"

    print("\n## DDIM's level with the best possible denoiser (dB against the true level; 64 clips of 2,000 samples)\n")
    print("| component std | steps | linear | quadratic | log-SNR (default) |\n|---|---|---|---|---|")
    for s in (0.05, 0.3):
        for steps in (7, 12, 25):
            print(f"| {s} | {steps} | " + " | ".join(level(s, "ddim", steps, sp) for sp in ("linear", "quadratic", "logsnr")) + " |")

    print("\n## The same denoiser, log-SNR spacing: DDIM against DPM-Solver++(2M), and DiffWave's fast chains\n")
    print("| component std | steps | DDIM | DPM-Solver++(2M) | fast chain |\n|---|---|---|---|---|")
    fast = {len(P.fast_betas): ("fast", "DiffWave's 6 betas"), len(P.fast_betas) + 1: ("fast_to_end", "closed 7-beta schedule")}
    for s in (0.05, 0.3):
        for steps in (6, 7, 8, 12):
            chain = ""
            if steps in fast:
                chain = level(s, fast[steps][0], None) + (f" ({fast[steps][1]})" if s == 0.05 else "")
            print(f"| {s} | {steps} | {level(s, 'ddim', steps)} | {level(s, 'dpmpp2m', steps)} | {chain} |")


GAINS = (-12, -6, -3.5, 0, 3, 6)  # dB: the planted copies' levels
# (training clips, held-out clips, bootstrap resamples, embedding epochs, Gaussian trials, copies' gains) per size
SIZES = {"full": (120, 128, 200, EmbeddingParams().epochs, 40, GAINS),
         "quick": (60, 64, 100, EmbeddingParams().epochs, 10, GAINS), "smoke": (20, 20, 10, 2, 1, (-6, 6))}  # fmt: skip


def main() -> None:
    import torch

    n_train, n_held, bootstrap, epochs, trials, gains = _bench.sized(__doc__, SIZES)
    torch.set_num_threads(1)
    real_cases(n_train, n_held, distances.EvalParams(bootstrap=bootstrap), epochs, gains)
    gaussian_cases(trials)


if __name__ == "__main__":
    main()
