"""The real Snakemake workflow on a tiny config in a temporary folder."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml
from conftest import REPO, copy_repo, make_bad_corpus, tone, write

import browser

pytestmark = pytest.mark.slow

TINY = {
    "embedded_corpus": {"clips_per_category": 2, "seconds": [1.5, 2.5]},
    "datasets": {
        "embedded": {"root": "results/embedded_corpus", "segment_seconds": 1},
        "messy": {"root": "corpus", "segment_seconds": 0.5, "remainder": "drop", "heldout_fraction": 0.7},
    },
    "report": {"examples_per_dataset": 3},
    # intervals from 20 resamples: every stage still computes them, in a tenth of the time
    "evaluation": {"bootstrap": 20},
    # both generators, side by side: the paper's waveform DiffWave, and a mel prior with both vocoders
    "generators": ["waveform", "mel"],
    # A model small enough to train in seconds: this checks the plumbing, not the learning (tests/test_train.py does).
    # class-conditional, so that the run goes through the per-category evaluation (the paper's unconditional
    # model runs in tests/test_gpu_check.py, on the default config)
    "model": {"residual_layers": 2, "residual_channels": 8, "conditional": True},
    "train": {"steps": 30, "batch_size": 2, "crop_seconds": 0.25, "checkpoint_every": 10, "log_every": 5,
              "snapshot_every": 15},
    "mel_prior": {"model": {"residual_layers": 2, "residual_channels": 16, "conditional": True},
                  "diffusion": {"prediction": "v"},
                  "train": {"steps": 20, "batch_size": 2, "checkpoint_every": 10, "log_every": 5, "snapshot_every": 20}},
    "vocoder": {"kinds": ["griffin_lim", "diffwave"],
                "diffwave": {"model": {"residual_layers": 2, "residual_channels": 4},
                             "train": {"steps": 10, "batch_size": 2, "crop_seconds": 0.1, "checkpoint_every": 5,
                                       "log_every": 5}}},
    "sampling": {"steps": [200, 6], "n_samples": 2, "seconds": 0.25},  # the full chain and the fast schedule
    # a short listening test of each route's full chain, answered in Chromium by test_listening_answers_reach_the_report
    "listening": {"raters": 2, "afc_per_system": 1, "mos_per_system": 1, "category_trials": 2, "steps": [200]},
}


def snakemake(workdir, *args, check=True, snakefile=REPO / "Snakefile"):
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(snakefile), "--directory", str(workdir), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if check and proc.returncode:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


class Plan(set):
    """The rule names a dry run would execute, and its console (`text`: each job with its output files)."""

    def __init__(self, rules, text):
        super().__init__(rules)
        self.text = text


def planned_rules(workdir, target="results/report.html", snakefile=REPO / "Snakefile") -> Plan:
    out = snakemake(workdir, "-n", target, snakefile=snakefile).stdout
    rules, in_table = set(), False
    for line in out.splitlines():
        if line.startswith("job ") and "count" in line:
            in_table = True
        elif in_table and line.strip() and not line.startswith("-"):
            name = line.split()[0]
            if name == "total":
                break
            rules.add(name)
    return Plan(rules, out)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("wf")
    # A user corpus that mixes good and bad files, the same as the unit tests use.
    make_bad_corpus(workdir / "corpus")
    # outside any category folder: kept uncategorised, and every later stage must cope (it once crashed `embedding`);
    # two of them, so that one lands in the training split and trains the conditional model's null class
    write(workdir / "corpus" / "loose.wav", tone(520, 1.0, 16000), 16000)
    write(workdir / "corpus" / "loose2.wav", tone(700, 1.0, 16000), 16000)
    # One dataset trained part-way, its newest checkpoint cut short (a full disk): the run resumes from the one before
    (workdir / "config.yaml").write_text(yaml.safe_dump(TINY | {"train": TINY["train"] | {"steps": 20}}))
    # a thread a job: the tiny jobs are mostly Python's and torch's start-up, which two at a time halve
    snakemake(workdir, "--cores", "2", "--max-threads", "1", "results/messy/model.pt")
    [newest] = (workdir / "results" / "messy" / "checkpoints").glob("*/step-0000020.pt")
    newest.write_bytes(newest.read_bytes()[:2000])
    (workdir / "config.yaml").write_text(yaml.safe_dump(TINY))
    console = snakemake(workdir, "--cores", "2", "--max-threads", "1", "results/report.html").stdout
    (workdir / "console.txt").write_text(console)  # what the user saw, for test_long_stages_show_progress_on_the_console
    return workdir


def test_outputs_exist_and_agree(run):
    for name in ("embedded", "messy"):
        for f in ("manifest.csv", "segments.csv", "segments.npy", "segments.json", "mels.npy", "figures/mels.png"):
            assert (run / "results" / name / f).stat().st_size > 0, (name, f)
        for f in ("embedding.pt", "embedding.json", "evaluation/waveform-steps-6.json", "evaluation/mel-diffwave-steps-6.json",
                  "evaluation/copy-synthesis-griffin_lim.json", "evaluation/real.json", "evaluation/noise.json"):
            assert (run / "results" / name / f).stat().st_size > 0, (name, f)
        for rule in ("ingest", "segment", "mel", "embedding"):
            assert (run / "results" / "logs" / name / f"{rule}.log").exists()
            assert (run / "results" / "benchmarks" / name / f"{rule}.tsv").exists()
    figures = {p.name for p in (run / "results" / "figures").iterdir()}
    assert {f"{n}_{route}_{k}.{ext}" for n in ("embedded", "messy") for route in ("waveform", "mel-griffin_lim", "mel-diffwave")
            for k in ("mels", "features", "quality", "time_to_quality") for ext in ("png", "pdf")} <= figures
    corpus = sorted((run / "results" / "embedded_corpus").rglob("*.wav"))
    assert len(corpus) == 10
    manifest = pd.read_csv(run / "results" / "embedded" / "manifest.csv")
    assert (manifest.loc[manifest.relpath.str.endswith(".wav"), "status"] == "ok").all()
    assert set(manifest.sample_rate.dropna()) == {44100, 22050}


def test_long_stages_show_progress_on_the_console(run):
    """Training, sampling and the evaluation's loops print steps done of the total, the rate and the time left on
    Snakemake's console, in whole lines (a log file or SLURM's output keeps them readable); the logs stay as they were."""
    console = (run / "console.txt").read_text()
    assert "\r" not in console
    train = [line for line in console.splitlines() if line.startswith("train embedded: training ")]
    assert train[0] == "train embedded: training 0 of 30 steps (0%)"
    assert re.fullmatch(r"train embedded: training 5 of 30 steps \(17%\), [\d.]+ (steps/s|s/step), 0:\d\d:\d\d left, "
                        r"loss [\d.]+", train[1]), train
    assert train[-1].startswith("train embedded: training 30 of 30 steps (100%), ") and ", done in 0:" in train[-1]
    # the run cut short at step 20 resumed from its checkpoint of step 10: the count starts there
    assert "train messy: training 10 of 30 steps (33%)" in console
    assert re.search(r"^sample embedded 200: sampling 200 of 200 denoising steps \(100%\), .*done in", console, re.M)
    assert "embedding embedded: training the embedding 60 of 60 epochs (100%)" in console
    assert re.search(r"^progress embedded waveform: sampling and scoring snapshots 2 of 2 snapshots \(100%\)", console, re.M)
    assert "of 30 steps" not in (run / "results" / "logs" / "embedded" / "train.log").read_text()


def test_bad_files_are_listed_and_the_rest_processed(run):
    m = pd.read_csv(run / "results" / "messy" / "manifest.csv", keep_default_na=False).set_index("relpath")
    assert m.loc["pain/corrupt.wav", "status"] == "rejected"
    assert m.loc["pain/zero.wav", "reason"].startswith("empty")
    assert m.loc["pain/notes.wav", "reason"].startswith("unreadable")
    assert m.loc["hunger/silent.wav", "reason"].startswith("silent")
    seg = pd.read_csv(run / "results" / "messy" / "segments.csv")
    assert set(seg.path.map(lambda p: p.split("corpus/")[-1])) == {"pain/good_44k.wav", "pain/good_stereo_22k.wav",
                                                                   "hunger/good.flac", "loose.wav", "loose2.wav"}  # fmt: skip
    assert len(seg) == 4 + 3 + 2 + 2 + 2  # 2.3 s, 1.6 s, 1.2 s, 1.0 s, 1.0 s in 0.5 s segments, remainders dropped
    # one uncategorised file on each side of the split: the conditional model trained on one (as its null class)
    assert set(seg.loc[seg.category.fillna("") == "", "split"]) == {"train", "heldout"}
    assert "uncategorised: they train the null" in (run / "results" / "logs" / "messy" / "train.log").read_text()
    assert m.loc["loose.wav", "status"] == "ok" and "uncategorised" in m.loc["loose.wav", "reason"]


def test_report_opens_with_images_and_playable_audio(run):
    html = run / "results" / "report.html"
    text = html.read_text()
    assert "messy" in text and "unreadable" in text
    # the cut-short checkpoint, named in the training log and in the report
    assert "step-0000020.pt is unreadable" in (run / "results" / "logs" / "messy" / "train.log").read_text()
    assert text.count("Unreadable checkpoint passed over:</span> step-0000020.pt: ") == 1
    if not browser.available():
        pytest.skip("headless Chromium not installed (.ci/run installs it)")
    seen = browser.inspect(html)
    # Per dataset: 3 data figures; 4 loss curves (the waveform model, the prior in each mel route, the vocoder);
    # 3 real mels and 3 routes x 2 step counts x 2 generated ones; per route 3 evaluation figures and the
    # quality-against-training-time figure; the utility stage's figure (UAR against the share of the training
    # recordings). Audio: 3 + 3 real clips, the 12 generated, 2 nearest-neighbour pairs a route.
    measured = sum(not json.loads((run / "results" / n / "utility.json").read_text())["skipped"] for n in ("embedded", "messy"))
    assert len(seen["images"]) == 2 * (3 + 4 + 3 + 12 + 3 * 4) + measured and all(i["ok"] for i in seen["images"])
    assert len(seen["audio"]) == 2 * (3 + 3 + 12 + 3 * 2 * 2) and all(a["ok"] for a in seen["audio"])
    assert "real vs real (floor)" in text and "Gaussian noise (baseline)" in text
    assert text.count("A short run, not a trained model.") == 2 * 3  # each route's, each dataset's
    # the routes side by side, each step count judged by every check of a cry, and each vocoder's ceiling
    assert text.count('<tr class="side-by-side">') == 2 * 3 * 2 and "checks pass" in text
    copies = text.count("copy synthesis, griffin_lim (real log-mels)")  # a row in each metrics table of each dataset
    assert copies >= 2 * 2 and text.count('<tr class="copy">') == 2 * copies and "copy synthesis, diffwave" in text
    assert text.count("No listening results exist yet") == 2 and "cry_diffusion.listening serve results/listening/messy" in text
    # the conditional model's clips, category by category; the stages each ran on; n beside FAD and KID
    assert "By category: waveform DiffWave at 200 steps" in text and text.count('<tr class="category">') >= 2
    assert text.count('<tr class="device">') == 2 * 4 and "KID [95% CI]" in text and "2 vs " in text
    # the time-to-quality table: the 6-step set judged against the 200-step chain, as tradeoff.json says
    result = json.loads((run / "results" / "embedded" / "evaluation" / "tradeoff-waveform.json").read_text())
    assert result["base_steps"] == 200 and [(r["steps"], r["sampler"]) for r in result["rows"]] == [(200, "ancestral"), (6, "fast")]
    verdict = result["rows"][1]["verdict"]  # with 2 clips per set: "undecided (too few clips)", unless a difference is plain
    assert "Time to quality" in text and (">worse<" if verdict == "worse" else verdict) in text
    # quality against training time: a row per snapshot (every 15 of 30 steps), later ones trained longer
    mel = json.loads((run / "results" / "embedded" / "evaluation" / "progress-mel-diffwave.json").read_text())
    assert [r["step"] for r in mel["rows"]] == [20] and mel["route"] == "mel-diffwave"  # the prior's snapshot, vocoded
    progress = json.loads((run / "results" / "embedded" / "evaluation" / "progress-waveform.json").read_text())
    assert [r["step"] for r in progress["rows"]] == [15, 30] and progress["steps"] == 200
    assert progress["rows"][0]["minutes"] < progress["rows"][1]["minutes"]
    assert all(r["fad"]["low"] <= r["fad"]["value"] <= r["fad"]["high"] for r in progress["rows"])
    assert set(progress["rows"][0]["wasserstein"]) == set(progress["real_range"])
    assert "Quality against training time" in text and text.count('id="embedded-waveform-progress"') == 1
    # A pair is marked as a near copy exactly when the evaluation flagged it.
    flagged = 0
    for name in ("embedded", "messy"):
        for route in ("waveform", "mel-griffin_lim", "mel-diffwave"):
            nn = json.loads((run / "results" / name / "evaluation" / f"{route}-steps-200.json").read_text())["nearest_train"]
            flagged += sum(d <= nn["threshold"] for d in sorted(nn["distance"])[:3])
    assert text.count('<span class="bad">near copy</span>') == flagged


def test_listening_answers_reach_the_report(run):
    """A rater answers the pipeline's study in Chromium; the next report run redoes the analysis and the report only."""
    if not browser.available():
        pytest.skip("headless Chromium not installed (.ci/run installs it)")
    from rater import Serving, answer_trials, chromium, state

    study = run / "results" / "listening" / "embedded"
    plan = json.loads((study / "plan.json").read_text())
    systems = ["waveform-steps-200", "mel-griffin_lim-steps-200", "mel-diffwave-steps-200"]  # both generators, apart
    assert plan["systems"] == systems and plan["kinds"] == ["afc", "mos", "category"]
    server, driver = Serving(study).start(), chromium()
    try:
        driver.get(server.url)
        # a listener who hears the noise for what it is: the attention check's real clip, wherever it sits; else the first
        def choose(trial, options):
            heard = [plan["stimuli"][name]["system"] for name in driver.execute_script("return current.trial.stimuli")]
            return heard.index("real") if {"real", "noise"} <= set(heard) else 0

        answered = answer_trials(driver, choose=choose)
        assert state(driver) == "done"
    finally:
        driver.quit()
        server.stop()
    assert planned_rules(run) == {"listening_results", "report"}  # the database is newer than results.json
    snakemake(run, "--cores", "2", "results/report.html")
    result = json.loads((study / "results.json").read_text())
    assert result["answers"] == len(answered) == len(next(iter(plan["raters"].values())))
    assert [r["system"] for r in result["afc"]] == systems + ["noise"]
    text = (run / "results" / "report.html").read_text()
    assert text.count("No listening results exist yet") == 1  # messy's study has no answers
    assert f"{len(answered)} answers from 1 rater (" in text and text.count('<tr class="listening-afc') == 4
    assert planned_rules(run) == set()


def test_mel_change_reruns_mel_and_after_only(run):
    assert planned_rules(run) == set()  # up to date after the run
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["mel"] = {"hop_ms": 12.5}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    try:
        # and the mel route, which learns from the mels (and the utility stage's generators): not the waveform model
        assert planned_rules(run) == {"mel", "embedding", "reference", "evaluate", "tradeoff", "figures", "progress",
                                      "listening_results", "report", "train_prior", "sample_prior", "train_vocoder",
                                      "vocode", "vocode_trained", "copy_synthesis", "copy_synthesis_trained",
                                      "loss_figure", "listening", "utility_pool", "withheld", "utility"}  # fmt: skip
    finally:
        (run / "config.yaml").write_text(yaml.safe_dump(TINY))


MEL_ROUTE_AFTER_SAMPLING = {"evaluate", "tradeoff", "figures", "progress", "listening", "listening_results", "report"}
UTILITY = {"utility_pool", "withheld", "utility"}  # its generator is the mel prior with Griffin-Lim (utility.route)


@pytest.mark.parametrize("edit, expected", [
    # the trained vocoder's settings: it retrains, and only its own sets and ceiling are made again
    ({"vocoder": {"diffwave": {"train": {"learning_rate": 1e-3}}}},
     {"train_vocoder", "loss_figure", "vocode_trained", "copy_synthesis_trained"} | MEL_ROUTE_AFTER_SAMPLING),
    # how the vocoder samples: no retraining of anything
    ({"vocoder": {"diffwave": {"steps": 5}}}, {"vocode_trained", "copy_synthesis_trained"} | MEL_ROUTE_AFTER_SAMPLING),
    # Griffin-Lim's iterations: its sets and ceiling only, and the utility stage's clips, which it makes
    ({"vocoder": {"griffin_lim": {"iterations": 8}}}, {"vocode", "copy_synthesis"} | MEL_ROUTE_AFTER_SAMPLING | UTILITY),
    # the prior's training: the prior retrains and is sampled and vocoded again; the vocoder is not retrained
    ({"mel_prior": {"train": {"learning_rate": 1e-3}}},
     {"train_prior", "loss_figure", "sample_prior", "vocode", "vocode_trained"} | MEL_ROUTE_AFTER_SAMPLING | UTILITY),
    # the utility grid: the classifier's stage alone; the share of the generated clips: their pool too
    ({"utility": {"fractions": [0.5, 1.0]}}, {"utility", "report"}),
    ({"utility": {"ratios": [3.0]}}, {"utility_pool", "utility", "report"}),
])  # fmt: skip
def test_a_mel_route_setting_reruns_its_own_stages_only(run, edit, expected, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import gpu_check  # noqa: PLC0415 (its merge: a nested dict over another)

    (run / "config.yaml").write_text(yaml.safe_dump(gpu_check.merge(TINY, edit)))
    try:
        plan = planned_rules(run)
        assert plan == expected
        out = plan.text
        assert "output: results/embedded/model.pt" not in out and "output: results/embedded/samples/waveform-steps-" not in out
        if "train_prior" not in expected:
            assert "output: results/embedded/mel_prior/samples/" not in out
    finally:
        (run / "config.yaml").write_text(yaml.safe_dump(TINY))


def reordered(value):
    """The same config with every mapping's keys in reverse order (yaml.safe_dump sorts; people reorder by hand)."""
    if isinstance(value, dict):
        return {k: reordered(value[k]) for k in reversed(list(value))}
    return value


def test_the_same_values_in_another_order_or_spelling_rerun_nothing(run):
    """Key order, and 1 against 1.0 (or 30.0 against 30), once reran all the jobs, training included."""
    config = reordered(TINY)
    config["datasets"]["embedded"]["segment_seconds"] = 1.0  # a number: was 1
    config["train"]["steps"] = 30.0  # an integer: was 30
    config["evaluation"]["copy_percentile"] = 1  # the default, 1.0, written as an int
    (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    try:
        assert planned_rules(run) == set()
    finally:
        (run / "config.yaml").write_text(yaml.safe_dump(TINY))


@pytest.mark.parametrize("module, edit, expected", [
    # a constant of the acoustic features: the rules whose scripts import features.py, directly or not, and after
    ("features", ("    voicing: float = 0.45", "    voicing: float = 0.5"),
     {"reference", "evaluate", "tradeoff", "figures", "progress", "listening", "listening_results", "report",
      "copy_synthesis", "copy_synthesis_trained", "utility"}),
    # a comment, and a docstring: nothing that runs changes, so nothing reruns
    ("features", ("# Name, unit and axis label of every feature", "# The features, in table order"), set()),
    ("features", ('"""Acoustic features of a cry', '"""The acoustic features of a cry'), set()),
    # how progress lines read: what a job prints, not what it makes
    ("console", ('INTERVAL = 30.0', 'INTERVAL = 10.0'), set()),
])  # fmt: skip
def test_a_library_edit_reruns_the_rules_that_import_it(run, tmp_path, module, edit, expected):
    """Code hashes follow the imports: no hand-kept list can miss a module a script reaches."""
    copy = copy_repo(tmp_path / "checkout")
    source = copy / "src" / "cry_diffusion" / f"{module}.py"
    text = source.read_text()
    assert edit[0] in text
    source.write_text(text.replace(edit[0], edit[1], 1))
    assert planned_rules(run, snakefile=copy / "Snakefile") == expected


def test_segment_change_of_one_dataset_spares_the_other(run):
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["datasets"]["messy"]["remainder"] = "pad"
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    try:
        plan = planned_rules(run)
        out = plan.text
        assert "output: results/messy/segments.npy" in out and "output: results/embedded/segments.npy" not in out
        assert plan == {"segment", "mel", "data_figures", "train", "loss_figure", "sample", "embedding",
                                      "reference", "evaluate", "tradeoff", "figures", "progress", "listening",
                                      "listening_results", "report", "train_prior", "sample_prior", "train_vocoder",
                                      "vocode", "vocode_trained", "copy_synthesis", "copy_synthesis_trained"} | UTILITY  # fmt: skip
    finally:
        (run / "config.yaml").write_text(yaml.safe_dump(TINY))


def test_a_new_step_count_samples_only_that(run):
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["sampling"]["steps"] = [200, 6, 12]
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    try:
        # the study listens to 200 steps only (TINY's listening.steps): it stays as it is
        plan = planned_rules(run)
        assert plan == {"sample", "sample_prior", "vocode", "vocode_trained", "evaluate", "tradeoff", "figures",
                        "report"}  # fmt: skip
        out = plan.text
        for system in ("waveform-steps-12", "mel-griffin_lim-steps-12", "mel-diffwave-steps-12"):
            assert f"output: results/embedded/samples/{system}/samples.npy" in out
            assert f"output: results/embedded/evaluation/{system}.json" in out
        assert "output: results/embedded/samples/waveform-steps-6/samples.npy" not in out
        assert "output: results/embedded/mel_prior/samples/steps-6/mels.npy" not in out
        assert "output: results/embedded/evaluation/noise.json" not in out
    finally:
        (run / "config.yaml").write_text(yaml.safe_dump(TINY))


def test_training_change_retrains_and_resamples_only(run):
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["train"]["steps"] = 40
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    try:
        plan = planned_rules(run)
        assert plan == {"train", "loss_figure", "sample", "evaluate", "tradeoff", "figures", "progress", "listening",
                        "listening_results", "report"}  # fmt: skip
        assert "output: results/embedded/evaluation/real.json" not in plan.text
    finally:
        (run / "config.yaml").write_text(yaml.safe_dump(TINY))


TORCH_STAGES_AND_AFTER = {"train", "loss_figure", "sample", "embedding", "reference", "evaluate", "tradeoff", "figures",
                          "progress", "listening", "listening_results", "report", "train_prior", "sample_prior",
                          "train_vocoder", "vocode", "vocode_trained", "copy_synthesis", "copy_synthesis_trained",
                          "utility_pool", "withheld", "utility"}  # fmt: skip


@pytest.mark.parametrize("edit, expected", [
    # how often training logs and checkpoints: the same weights, so nothing reruns
    ({"train": TINY["train"] | {"log_every": 10, "checkpoint_every": 5}}, set()),
    # `auto` resolved to this machine's device, which is the CPU: the same run as `cpu`
    ({"device": "cpu"}, set()),
    # what `auto` resolves to on a GPU machine: the CPU's results are not reused there
    ({"device": "cuda"}, TORCH_STAGES_AND_AFTER),
])  # fmt: skip
def test_only_what_changes_results_reruns(run, edit, expected):
    (run / "config.yaml").write_text(yaml.safe_dump(TINY | edit))
    try:
        assert planned_rules(run) == expected
    finally:
        (run / "config.yaml").write_text(yaml.safe_dump(TINY))


def test_train_gpus_2_runs_torchrun_and_equals_the_librarys_own(run, tmp_path):
    """train.gpus: 2 on the CPU (gloo): the rule starts torchrun itself, and its model and loss history are the
    ones `torchrun -m cry_diffusion.train` gives on the same segments. Changing gpus retrains in a run folder
    of its own: with a per-GPU batch the global batch, and so the weights, follow the process count."""
    import torch  # noqa: PLC0415 (only these tests need it)

    from cry_diffusion.segment import read_table, side  # noqa: PLC0415

    work = tmp_path / "wf"
    for name in ("segments.npy", "segments.csv"):  # the module run's segments: train alone runs here
        (work / "results" / "embedded").mkdir(parents=True, exist_ok=True)
        (work / "results" / "embedded" / name).write_bytes((run / "results" / "embedded" / name).read_bytes())
    config = {**TINY, "datasets": {"embedded": TINY["datasets"]["embedded"]}, "model": {**TINY["model"], "conditional": False},
              "train": {"steps": 20, "batch_size": 2, "crop_seconds": 0.25, "checkpoint_every": 10, "log_every": 5,
                        "gpus": 2}}  # fmt: skip
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    train_only = ["--cores", "2", "--allowed-rules", "train", "--resources", "gpu=2", "--", "results/embedded/model.pt"]
    console = snakemake(work, *train_only).stdout
    ours = work / "results" / "embedded"
    # the workers' progress reaches the console, the first rank's only
    assert console.count("train embedded: training 0 of 20 steps (0%)") == 1 and "training 20 of 20 steps (100%)" in console

    rows = side(read_table(ours / "segments.csv"), "train")
    np.save(tmp_path / "segments.npy", np.load(ours / "segments.npy")[rows["index"].to_numpy()])
    np.save(tmp_path / "padded.npy", rows["padded_samples"].to_numpy())
    lib = tmp_path / "lib"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "cry_diffusion.train",
           "--segments", str(tmp_path / "segments.npy"), "--padded", str(tmp_path / "padded.npy"), "--out", str(lib / "model.pt"),
           "--checkpoint-dir", str(lib / "ckpt"), "--loss-csv", str(lib / "loss.csv"), "--steps", "20", "--batch-size", "2",
           "--crop-samples", "4000", "--checkpoint-every", "10", "--log-every", "5", "--residual-layers", "2",
           "--residual-channels", "8", "--threads", "1"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = (torch.load(d / "model.pt", weights_only=True) for d in (ours, lib))
    assert a["step"] == b["step"] == 20 and a["world_size"] == b["world_size"] == 2 and a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"]), "weights differ from the library's"
    steps_and_losses = [pd.read_csv(d / "loss.csv")[["step", "loss"]].values.tolist() for d in (ours, lib)]
    assert steps_and_losses[0] == steps_and_losses[1] and len(steps_and_losses[0]) == 4

    def checkpoints():
        return {str(p.relative_to(ours)): p.stat().st_mtime_ns for p in (ours / "checkpoints").rglob("*.pt")}

    two = checkpoints()
    config["train"]["gpus"] = 1
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    assert "train" in snakemake(work, "-n", *train_only).stdout  # the params changed
    snakemake(work, *train_only)
    after = checkpoints()
    assert len(list((ours / "checkpoints").iterdir())) == 2 and len(after) == 2 * len(two)  # a run of its own...
    assert two.items() <= after.items()  # ...beside the 2-process one, which stays as it was
    one = torch.load(ours / "model.pt", weights_only=True)
    assert not torch.equal(one["model"]["input_projection.weight"], a["model"]["input_projection.weight"])


def test_trained_and_sampled_outputs(run):
    import torch  # noqa: PLC0415 (only this test needs it)

    for name in ("embedded", "messy"):
        ck = torch.load(run / "results" / name / "model.pt", weights_only=True)
        assert ck["step"] == 30 and ck["model_params"]["residual_layers"] == 2
        loss = pd.read_csv(run / "results" / name / "loss.csv")
        assert loss["step"].tolist() == [5, 10, 15, 20, 25, 30]
        snapshots = sorted(p.name for p in (run / "results" / name / "snapshots").glob("step-*.pt"))
        assert snapshots == ["step-0000015.pt", "step-0000030.pt"]
        assert torch.load(run / "results" / name / "snapshots" / snapshots[0], weights_only=True)["step"] == 15
        prior = torch.load(run / "results" / name / "mel_prior" / "model.pt", weights_only=True)
        assert prior["network"] == "mel_prior" and prior["step"] == 20 and prior["model_params"]["n_mels"] == 80
        vocoder = torch.load(run / "results" / name / "vocoder" / "diffwave" / "model.pt", weights_only=True)
        assert vocoder["network"] == "vocoder" and vocoder["step"] == 10 and vocoder["diffusion_params"]["steps"] == 50
        for steps, sampler in ((200, "ancestral"), (6, "fast")):
            for route in ("waveform", "mel-griffin_lim", "mel-diffwave"):
                folder = run / "results" / name / "samples" / f"{route}-steps-{steps}"
                info = json.loads((folder / "info.json").read_text())
                assert info["sampler"] == sampler and info["n"] == 2
                audio = np.load(folder / "samples.npy")
                assert audio.shape == (2, 4000) and np.isfinite(audio).all() and np.abs(audio).max() <= 1
                wavs = sorted((folder / "wav").glob("*.wav"))
                assert len(wavs) == 2
                assert sf.info(str(wavs[0])).samplerate == 16000
            mels = np.load(run / "results" / name / "mel_prior" / "samples" / f"steps-{steps}" / "mels.npy")
            assert mels.shape == (2, 80, 26)  # 0.25 s: 25 hops of 10 ms, centred frames
            # the mel route's info: its prior's sampling, then its vocoder's, and the time of both
            info = json.loads((run / "results" / name / "samples" / f"mel-diffwave-steps-{steps}" / "info.json").read_text())
            assert info["vocoder"]["vocoder"] == "diffwave" and info["vocoder"]["sampler"] == "fast"
            assert info["wall_seconds"] == pytest.approx(info["prior_wall_seconds"] + info["vocoder"]["wall_seconds"])


def test_each_vocoder_s_ceiling_is_the_real_floor_s_clips_through_it(run):
    """Copy synthesis is made of the very clips the floor is scored on, so a perfect vocoder would score as the floor:
    made of other clips (the reference half, the training split) the ceiling would not be the vocoder's."""
    from cry_diffusion import evaluate  # noqa: PLC0415
    from cry_diffusion.mel import log_mel  # noqa: PLC0415

    results = run / "results" / "embedded"
    floor = evaluate.Reference.load(results / "evaluation" / "reference.npz").floor_audio
    real = json.loads((results / "evaluation" / "real.json").read_text())
    for kind in ("griffin_lim", "diffwave"):
        audio = np.load(results / "samples" / f"copy-synthesis-{kind}" / "samples.npy")
        scored = json.loads((results / "evaluation" / f"copy-synthesis-{kind}.json").read_text())
        assert audio.shape == floor.shape and scored["n"] == real["n"] == len(floor) and scored["n_ref"] == real["n_ref"]
    # Griffin-Lim keeps the magnitudes: each clip's log-mel, gain taken out, is nearest its own floor clip's
    mine, theirs = (log_mel(x).mean(-1) for x in (np.load(results / "samples" / "copy-synthesis-griffin_lim" / "samples.npy"), floor))
    mine, theirs = mine - mine.mean(1, keepdims=True), theirs - theirs.mean(1, keepdims=True)
    distance = ((mine[:, None] - theirs[None]) ** 2).sum(-1)
    assert distance.argmin(1).tolist() == list(range(len(floor)))


def test_the_utility_stage_says_whether_synthetic_clips_help(run):
    """utility.json's parts, the report's section, and a second generator that never saw the withheld category."""
    import torch  # noqa: PLC0415

    for name in ("embedded", "messy"):
        result = json.loads((run / "results" / name / "utility.json").read_text())
        assert result["route"] == "mel-griffin_lim"
        if result["skipped"]:  # too little held out of some category to test on: said, not guessed
            continue
        assert {"trtr", "tstr", "augmented", "unseen", "verdict"} <= set(result)
        assert set(result["trtr"]) == {"0.1", "0.25", "1.0"} and set(result["augmented"]) == {
            "augmented x0.5", "augmented x1", "augmented x2", "balanced"}
        for row in result["rows"]:
            assert row["uar"]["low"] <= row["uar"]["value"] <= row["uar"]["high"] and len(row["seeds"]) == 3
    embedded = json.loads((run / "results" / "embedded" / "utility.json").read_text())
    withheld = sorted(p.name for p in (run / "results" / "embedded" / "utility" / "withheld").iterdir() if p.is_dir())
    assert withheld == ["asphyxia"] and [u["category"] for u in embedded.get("unseen", [])] in ([], ["asphyxia"])
    prior = torch.load(run / "results" / "embedded" / "utility" / "withheld" / "asphyxia" / "model.pt", weights_only=True)
    assert "asphyxia" not in prior["class_names"] and len(prior["class_names"]) == 4
    text = (run / "results" / "report.html").read_text()
    assert text.count("Does synthetic data help?") >= 2 and "A short run, not a trained model" in text
