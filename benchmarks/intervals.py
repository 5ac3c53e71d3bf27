"""How often each interval holds what it aims at, at the clip and rater counts people run (docs/evaluation.md, docs/listening.md).

Simulations with known answers, each interval as the pipeline computes it:

- precision, recall, density, coverage (distances.prdc) and W1 (progress.w1_interval) against their
  expected value at n clips, Gaussian sets, n = 8 and 32;
- the classifier's IS and histogram KL (classifier_scores.class_scores) against the population's, n = 8 and 32;
- the 2AFC share picked as real (listening_analysis) with a true rate of 50% and rater and clip effects
  of 1 logit SD: how often the interval holds 50% and the test rejects it;
- the band check (progress.inside): how often real sets of n clips pass;
- the verdict (tradeoff.compare): how often a set of the same quality is shown no worse, and a set
  shifted to FD 4 is, at 8, 32 and 128 clips; and how much narrower paired draws make the intervals.

tests/test_evaluate.py, test_progress.py, test_tradeoff.py and test_listening.py run the same
simulations, smaller, and hold the shares to about 95%.

    python benchmarks/intervals.py             # about 5 minutes on 2 CPU cores
    python benchmarks/intervals.py --quick     # fewer trials, about a minute
    python benchmarks/intervals.py --smoke     # every section at its smallest: a check that it runs (the tests)
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import _bench  # noqa: E402

from cry_diffusion import classifier_scores, distances, listening_analysis, listening_build, listening_plan, progress  # noqa: E402
from cry_diffusion.features import FEATURES, wasserstein  # noqa: E402
from cry_diffusion.tradeoff import compare, evaluation_of  # noqa: E402

P = distances.EvalParams()


def prdc_hits(n: int, dim: int, trials: int, rng) -> np.ndarray:
    """[trials, 4]: whether each of precision, recall, density and coverage's intervals held its expected value at n."""

    def point(a, b):
        r = distances.prdc(a, b, distances.EvalParams(bootstrap=0))
        return [r[name]["value"] for name in distances.PRDC]

    truth = np.mean([point(rng.standard_normal((n, dim)), rng.standard_normal((n, dim))) for _ in range(5 * trials)], 0)
    hits = []
    for _ in range(trials):
        r = distances.prdc(rng.standard_normal((n, dim)), rng.standard_normal((n, dim)), P)
        hits.append([r[name]["low"] <= t <= r[name]["high"] for name, t in zip(distances.PRDC, truth)])
    return np.array(hits)


def w1_intervals(n: int, shift: float, trials: int, rng) -> tuple[float, list[dict]]:
    """W1's expected value between unit Gaussians `shift` apart at n clips each, and `trials` intervals of it."""
    truth = np.mean([wasserstein(rng.standard_normal(n) + shift, rng.standard_normal(n)) for _ in range(5 * trials)])
    return float(truth), [progress.w1_interval(rng.standard_normal(n) + shift, rng.standard_normal(n), P) for _ in range(trials)]


def classifier_hits(n: int, trials: int, rng) -> np.ndarray:
    """[trials, 2]: whether IS's and the histogram KL's intervals held the population's IS and a KL of 0 (5 categories)."""
    means = rng.standard_normal((5, 5)) * 2

    def draw(count):
        z = means[rng.integers(0, 5, count)] + 1.5 * rng.standard_normal((count, 5))
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    population = draw(100_000)
    true_is = float(np.exp(np.mean((population * (np.log(population) - np.log(population.mean(0)))).sum(1))))
    hits = []
    for _ in range(trials):
        s = classifier_scores.class_scores(draw(n), draw(n), list("abcde"), P)
        hits.append([s["inception_score"]["low"] <= true_is <= s["inception_score"]["high"],
                     s["histogram_kl"]["low"] <= 0 <= s["histogram_kl"]["high"]])
    return np.array(hits)


def afc_hits(raters: int, studies: int, bootstrap: int, rng) -> np.ndarray:
    """[rows, 2]: per generated set of each simulated study, whether the 2AFC interval held 50% and the test rejected it.

    3 sets of 6 clips, 4 pairs of each per rater; a generated clip is picked as real with probability
    sigmoid(rater effect + clip effect), each effect N(0, 1): 50% over raters and clips."""
    with tempfile.TemporaryDirectory() as folder:
        t = np.arange(4000) / 16000
        clips = np.stack([np.sin(2 * np.pi * f * t) * 0.3 for f in np.linspace(300, 600, 8)]).astype(np.float32)
        p = listening_plan.StudyParams(raters=raters, clips=6, afc_per_system=4, kinds=("afc",))
        plan = listening_build.build(folder, clips, [""] * 8, {f"set-{i}": (clips[:6], None) for i in range(3)}, p)
    stimuli, hits = plan["stimuli"], []
    for study in range(studies):
        rater_effect = dict(zip(plan["raters"], rng.standard_normal(raters)))
        clip_effect = dict(zip(stimuli, rng.standard_normal(len(stimuli))))
        answers = []
        for rater, trials in plan["raters"].items():
            for trial in trials:
                real, fake = sorted(trial["stimuli"], key=lambda s: stimuli[s]["system"] != "real")
                picked = not trial["attention"] and rng.random() < 1 / (1 + np.exp(-rater_effect[rater] - clip_effect[fake]))
                answers.append({"rater": rater, "trial": trial["id"], "kind": "afc", "stimuli": trial["stimuli"],
                                "answer": fake if picked else real})  # fmt: skip
        result = listening_analysis.analyse(plan, answers, None, listening_analysis.AnalysisParams(bootstrap=bootstrap, seed=study))
        hits.extend([row["low"] <= 0.5 <= row["high"], row["p_value"] < 0.05] for row in result["afc"][:-1])
    return np.array(hits)


POPULATIONS = {"normal": lambda rng, size: rng.normal(400, 60, size), "log-normal": lambda rng, size: rng.lognormal(0, 0.5, size)}


def band_passes(population: str, n: int, trials: int, rng) -> np.ndarray:
    """[trials]: whether real sets of n values passed the band check, calibrated on 200 other real values."""
    draw = POPULATIONS[population]
    real = draw(rng, 200).tolist()
    return np.array([progress.inside(draw(rng, n).tolist(), real, n, P)["inside"] for _ in range(trials)])


def verdicts(n: int, trials: int, rng, dim: int = 32) -> tuple[dict, np.ndarray]:
    """Paired sets in dim dimensions against n reference clips: clip i of each tested set is 0.8 of the baseline's clip
    i plus 0.6 of its own noise. ({"same": verdicts, "shifted": verdicts to FD 4}, interval widths paired / unpaired
    for KID, recall and the f0 W1)."""
    said, widths = {"same": [], "shifted": []}, {True: [], False: []}
    for _ in range(trials):
        ref = rng.standard_normal((n, dim))
        ref_feats = {name: rng.standard_normal(n).tolist() for name in FEATURES}
        near = 0.5 * float(distances.distances(ref, ref)[np.triu_indices(n, 1)].min())  # no two reference clips this close
        z, fz = rng.standard_normal((n, dim)), {name: rng.standard_normal(n) for name in FEATURES}

        def made(e, feats, wall):
            return evaluation_of(e, {k: v.tolist() for k, v in feats.items()}, ref, ref_feats, near,
                                 wall_seconds_per_audio_second=wall)  # fmt: skip

        def tested(shift):
            return made(0.8 * z + 0.6 * rng.standard_normal((n, dim)) + shift,
                        {k: 0.8 * v + 0.6 * rng.standard_normal(n) for k, v in fz.items()}, 1.0)  # fmt: skip

        evals = {200: made(z, fz, 10.0), 50: tested(0.0), 7: tested(2 / np.sqrt(dim))}  # |shift|^2 = 4
        for paired in (True, False):
            rows = {r["steps"]: r for r in compare(evals, ref, ref_feats, P, paired=paired)["rows"]}
            d = rows[50]["difference"]
            widths[paired].append([d[m]["high"] - d[m]["low"] for m in ("kid", "recall", "f0_mean_hz")])
            if paired:
                said["same"].append(rows[50]["verdict"])
                said["shifted"].append(rows[7]["verdict"])
    with np.errstate(invalid="ignore"):  # one trial of 8 clips can leave recall's interval empty both ways
        return said, np.sum(widths[True], 0) / np.sum(widths[False], 0)


# (trials for the interval simulations, 2AFC studies and their bootstrap, verdict trials per n, the verdict's n) per size
SIZES = {"full": (1000, 200, 1000, 100, (8, 32, 128)), "quick": (200, 60, 300, 20, (8, 32, 128)),
         "smoke": (4, 2, 20, 1, (8,))}


def share(hits) -> str:
    return f"{100 * np.mean(hits):.0f}%"


def main() -> None:
    trials, studies, bootstrap, verdict_trials, verdict_clips = _bench.sized(__doc__, SIZES)
    rng = np.random.default_rng(0)
    print(f"\n## PRDC intervals: how often they hold the expected value at n clips (Gaussian sets, n reference clips, {trials} trials)\n")
    print("| clips | dimensions | precision | recall | density | coverage |\n|---|---|---|---|---|---|")
    for n in (8, 32):
        for dim in (8, 32):
            print(f"| {n} | {dim} | " + " | ".join(share(h) for h in prdc_hits(n, dim, trials, rng).T) + " |")
    print(f"\n## W1 intervals: how often they hold W1's expected value at n clips (unit Gaussians, {trials} trials)\n")
    print("| clips | same distribution | shifted 0.5 | shifted 1 |\n|---|---|---|---|")
    for n in (8, 32):
        cells = []
        for shift in (0.0, 0.5, 1.0):
            truth, found = w1_intervals(n, shift, trials, rng)
            cells.append(share([d["low"] <= truth <= d["high"] for d in found]))
        print(f"| {n} | " + " | ".join(cells) + " |")
    print(f"\n## The classifier's intervals: how often they hold the population's value (5 categories, {trials} trials)\n")
    print("| clips | IS | histogram KL (true 0) |\n|---|---|---|")
    for n in (8, 32):
        print(f"| {n} | " + " | ".join(share(h) for h in classifier_hits(n, trials, rng).T) + " |")
    print(f"\n## 2AFC: a true 50% with rater and clip effects of 1 logit SD ({bootstrap} two-way bootstrap resamples)\n")
    print("| raters | sets scored | interval holds 50% | test rejects 50% at 5% |\n|---|---|---|---|")
    for raters in (10, 20):
        hits = afc_hits(raters, studies, bootstrap, rng)
        print(f"| {raters} | {len(hits)} | {share(hits[:, 0])} | {share(hits[:, 1])} |")
    print(f"\n## The band check: how often real sets of n clips pass ({trials} sets; calibrated on 200 real values)\n")
    print("| clips | " + " | ".join(POPULATIONS) + " |\n|---|---|---|")
    for n in (8, 16, 32):
        print(f"| {n} | " + " | ".join(share(band_passes(name, n, trials, rng)) for name in POPULATIONS) + " |")
    print(f"\n## The verdict against the full chain: paired sets ({verdict_trials} trials per row)\n")
    print("| clips | dimensions | same quality: no worse | same quality: worse | shifted to FD 4: no worse "
          "| shifted to FD 4: worse | interval width paired / unpaired (KID, recall, W1 f0) |\n|---|---|---|---|---|---|---|")
    for n in verdict_clips:
        for dim in (8, 32):
            said, ratio = verdicts(n, verdict_trials, rng, dim)
            cells = [share([v in ("no worse", "better") for v in said[k]]) + " | " + share([v == "worse" for v in said[k]])
                     for k in ("same", "shifted")]
            print(f"| {n} | {dim} | " + " | ".join(cells) + " | " + ", ".join(f"{x:.2f}" for x in ratio) + " |")


if __name__ == "__main__":
    main()
