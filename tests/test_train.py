"""Training: it learns, it resumes bit-for-bit after SIGKILL/SIGTERM, it stops on NaN, it runs under torchrun.

    pytest tests/test_train.py            (about 2 minutes on 2 CPU cores)
"""

import csv
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from cry_diffusion import SAMPLE_RATE
from cry_diffusion.checkpoint import checkpoints
from cry_diffusion.diffusion import DiffusionParams
from cry_diffusion.generate import generate, load_model, write_wavs
from cry_diffusion.model import ModelParams
from cry_diffusion.train import TrainParams, train

pytestmark = pytest.mark.slow
FREQS = (400.0, 800.0)
TINY_CLI = ["--residual-layers", "2", "--residual-channels", "8", "--dilation-cycle", "2", "--batch-size", "4",
            "--crop-samples", "2000", "--learning-rate", "1e-3", "--threads", "1"]


def tones(per_freq=16, seconds=1.0, seed=0):
    """Sine tones at FREQS with random phase, amplitude 0.5; labels = index of the frequency."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    waves = [0.5 * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) for f in FREQS for _ in range(per_freq)]
    return np.stack(waves).astype(np.float32), np.repeat(np.arange(len(FREQS)), per_freq)


def dominant_frequency(audio: np.ndarray) -> np.ndarray:
    spectrum = np.abs(np.fft.rfft(audio, axis=1))
    return np.fft.rfftfreq(audio.shape[1], 1 / SAMPLE_RATE)[spectrum.argmax(1)]


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def train_tones(tmp_path, conditional: bool, steps=200, diffusion_params=DiffusionParams(), **recipe):
    segments, labels = tones()
    model_params = ModelParams(residual_layers=8, residual_channels=16, dilation_cycle=8,
                               num_classes=len(FREQS) if conditional else 0)
    tp = TrainParams(steps=steps, batch_size=8, crop_samples=4000, learning_rate=2e-3, checkpoint_every=100,
                     log_every=25, threads=1, **recipe)  # one thread: slower alone, far steadier on a busy CPU
    return train(segments, labels if conditional else None, model_params, diffusion_params, tp,
                 tmp_path / "model.pt", tmp_path / "ckpt", tmp_path / "loss.csv",
                 class_names=["low", "high"] if conditional else None)


def test_learns_tones(tmp_path):
    out = train_tones(tmp_path, conditional=False)
    losses = [float(r["loss"]) for r in read_csv(tmp_path / "loss.csv")]
    assert len(losses) == 8
    assert np.mean(losses[-2:]) < 0.5 * np.mean(losses[:2]), losses

    noise = np.random.default_rng(0).standard_normal((200, 4000))
    noise_hits = np.mean(np.min(np.abs(dominant_frequency(noise)[:, None] - FREQS), 1) <= 50)
    assert noise_hits < 0.1  # the chance level: 2 x 100 Hz of 8 kHz
    for steps in (20, 6):  # DDIM and DiffWave's fast sampler
        audio, info = generate(out, n=16, seconds=0.25, steps=steps, seed=1)
        assert info["sampler"] == ("fast" if steps == 6 else "ddim")
        hits = np.mean(np.min(np.abs(dominant_frequency(audio)[:, None] - FREQS), 1) <= 50)
        assert hits >= 0.6, (steps, dominant_frequency(audio))
    paths = write_wavs(audio[:2], tmp_path / "wavs", "tone")
    assert [p.name for p in paths] == ["tone_000.wav", "tone_001.wav"]


def test_the_recipe_options_learn_tones_and_sample_with_dpm_solver(tmp_path):
    """v-prediction, Min-SNR-5 weighting, warm-up and cosine decay together still learn the tones, and the
    model samples by every chain, DPM-Solver++(2M) included (the training levers of docs/performance.md)."""
    out = train_tones(tmp_path, conditional=False, diffusion_params=DiffusionParams(prediction="v"),
                      min_snr_gamma=5.0, warmup_steps=20, lr_schedule="cosine")
    assert load_model(out)[1]["diffusion_params"]["prediction"] == "v"
    for steps, solver in ((8, "dpmpp2m"), (20, "ddim"), (7, "ddim")):
        audio, info = generate(out, n=16, seconds=0.25, steps=steps, seed=1, solver=solver)
        assert info["sampler"] == ("fast_to_end" if steps == 7 else solver)
        hits = np.mean(np.min(np.abs(dominant_frequency(audio)[:, None] - FREQS), 1) <= 50)
        assert hits >= 0.6, (steps, solver, dominant_frequency(audio))


def test_conditional_guidance_picks_the_class(tmp_path):
    out = train_tones(tmp_path, conditional=True)
    model, ckpt = load_model(out)
    assert ckpt["class_names"] == ["low", "high"] and ckpt["step"] == 200
    for k, name in enumerate(ckpt["class_names"]):
        audio, info = generate(out, n=12, seconds=0.25, steps=20, seed=k, labels=name, guidance_scale=2.0)
        dom = dominant_frequency(audio)
        nearer_own = np.abs(dom - FREQS[k]) < np.abs(dom - FREQS[1 - k])
        assert nearer_own.mean() >= 0.75, (name, dom)


def run_cli(tmp_path, name, wait=True):
    """400 steps of a tiny model through the CLI, checkpoints every 20 steps, a loss row every 10."""
    segments = tmp_path / "segments.npy"
    if not segments.exists():
        np.save(segments, tones(per_freq=4, seconds=0.5)[0])
    cmd = [sys.executable, "-m", "cry_diffusion.train", "--segments", str(segments),
           "--out", str(tmp_path / f"{name}.pt"), "--checkpoint-dir", str(tmp_path / f"{name}-ckpt"),
           "--loss-csv", str(tmp_path / f"{name}.csv"),
           "--steps", "400", "--checkpoint-every", "20", "--log-every", "10", *TINY_CLI]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if wait:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    return proc


def interrupt_after_first_checkpoint(tmp_path, name, sig):
    proc = run_cli(tmp_path, name, wait=False)
    deadline = time.time() + 60
    while not checkpoints(tmp_path / f"{name}-ckpt"):
        assert proc.poll() is None and time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    assert not (tmp_path / f"{name}.pt").exists(), "the run finished before it was interrupted"
    return proc.returncode


def assert_same_model(a, b):
    ca, cb = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    assert ca["step"] == cb["step"] == 400
    for key in ca["model"]:
        assert torch.equal(ca["model"][key], cb["model"][key]), key


def test_resume_after_sigkill_and_sigterm_is_bit_identical(tmp_path):
    run_cli(tmp_path, "straight")
    reference = [r["loss"] for r in read_csv(tmp_path / "straight.csv")]
    assert len(reference) == 40

    assert interrupt_after_first_checkpoint(tmp_path, "killed", signal.SIGKILL) == -signal.SIGKILL
    (tmp_path / "killed.csv").unlink()  # as Snakemake removes a failed job's outputs: the history must survive it
    run_cli(tmp_path, "killed")
    rows = read_csv(tmp_path / "killed.csv")
    assert [int(r["step"]) for r in rows] == list(range(10, 401, 10))  # no duplicated or missing steps
    assert [r["loss"] for r in rows] == reference
    assert_same_model(tmp_path / "straight.pt", tmp_path / "killed.pt")
    assert len(checkpoints(tmp_path / "killed-ckpt")) == 2  # only the newest two are kept
    assert torch.load(tmp_path / "killed.pt", weights_only=True)["resumes"] == 1
    assert torch.load(tmp_path / "straight.pt", weights_only=True)["resumes"] == 0

    # SIGTERM: the run checkpoints the step it is on and exits with 128 + 15
    assert interrupt_after_first_checkpoint(tmp_path, "termed", signal.SIGTERM) == 128 + signal.SIGTERM
    stopped_at = torch.load(checkpoints(tmp_path / "termed-ckpt")[-1], weights_only=True)["step"]
    assert stopped_at >= 20
    (tmp_path / "termed.csv").unlink()
    run_cli(tmp_path, "termed")
    steps = [int(r["step"]) for r in read_csv(tmp_path / "termed.csv")]
    # one row per logged step from the first to the last, plus the row SIGTERM's checkpoint wrote at its own step
    assert steps == sorted(set(steps)) and set(range(10, 401, 10)) <= set(steps) and set(steps) - set(range(10, 401, 10)) <= {stopped_at}
    assert_same_model(tmp_path / "straight.pt", tmp_path / "termed.pt")


def test_nan_loss_raises_and_keeps_last_good_checkpoint(tmp_path):
    segments, _ = tones(per_freq=2, seconds=0.25)
    small = ModelParams(residual_layers=2, residual_channels=8, dilation_cycle=2)
    tp = TrainParams(steps=10, batch_size=2, crop_samples=1000, checkpoint_every=5, log_every=5)
    args = (tmp_path / "model.pt", tmp_path / "ckpt", tmp_path / "loss.csv")
    train(segments, None, small, DiffusionParams(), tp, *args)
    (tmp_path / "model.pt").unlink()

    bad = np.full_like(segments, np.nan)
    tp.steps = 20
    with pytest.raises(FloatingPointError, match="step 11"):
        train(bad, None, small, DiffusionParams(), tp, *args)
    assert [p.name for p in checkpoints(tmp_path / "ckpt")] == ["step-0000005.pt", "step-0000010.pt"]
    assert not (tmp_path / "model.pt").exists()
    ck = torch.load(checkpoints(tmp_path / "ckpt")[-1], weights_only=True)
    assert ck["step"] == 10 and all(torch.isfinite(v).all() for v in ck["model"].values())

    tp = TrainParams(steps=10, batch_size=2, crop_samples=1000, checkpoint_every=100, learning_rate=1e30)
    with pytest.raises(FloatingPointError, match=r"at step \d+"):
        train(segments, None, small, DiffusionParams(), tp, tmp_path / "m2.pt", tmp_path / "ckpt2", tmp_path / "l2.csv")
    assert not checkpoints(tmp_path / "ckpt2")


def test_torchrun_two_processes(tmp_path):
    segments = tones(per_freq=4, seconds=0.5)[0]
    np.save(tmp_path / "segments.npy", segments)
    padded = np.arange(len(segments)) % 3 * (segments.shape[1] // 4)  # some padded, so the ranks share a count
    np.save(tmp_path / "padded.npy", padded)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "cry_diffusion.train", "--segments", str(tmp_path / "segments.npy"), "--out", str(tmp_path / "m.pt"),
           "--padded", str(tmp_path / "padded.npy"),
           "--checkpoint-dir", str(tmp_path / "ckpt"), "--loss-csv", str(tmp_path / "loss.csv"),
           "--steps", "30", "--checkpoint-every", "10", "--log-every", "10", *TINY_CLI]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    ck = torch.load(tmp_path / "m.pt", weights_only=True)
    assert ck["step"] == 30
    last = torch.load(checkpoints(tmp_path / "ckpt")[-1], weights_only=True)
    assert len(last["rng"]) == 2  # one random state per rank...
    assert not torch.equal(last["rng"][0]["data"], last["rng"][1]["data"])  # ...drawing different crops
    assert [int(r["step"]) for r in read_csv(tmp_path / "loss.csv")] == [10, 20, 30]
    assert all(math.isfinite(float(r["loss"])) for r in read_csv(tmp_path / "loss.csv"))


def test_uncategorised_segments_train_the_null_class(tmp_path, one_thread):
    """Label num_classes is the null class: a conditional model trains on segments that have no category."""
    segments, labels = tones(per_freq=2, seconds=0.25)
    labels[-1] = len(FREQS)  # one segment without a category
    model_params = ModelParams(residual_layers=2, residual_channels=8, dilation_cycle=2, num_classes=len(FREQS))
    tp = TrainParams(steps=4, batch_size=4, crop_samples=1000, checkpoint_every=4, log_every=2, threads=1)
    out = train(segments, labels, model_params, DiffusionParams(), tp, tmp_path / "model.pt", tmp_path / "ckpt",
                tmp_path / "loss.csv", class_names=["low", "high"])
    assert torch.load(out, weights_only=True)["step"] == 4
    labels[-1] = len(FREQS) + 1  # past the null class: a mistake
    with pytest.raises(ValueError, match=r"need one label in \[0, 2\] per segment"):
        train(segments, labels, model_params, DiffusionParams(), tp, tmp_path / "m2.pt", tmp_path / "c2", tmp_path / "l2.csv",
              class_names=["low", "high"])


def test_a_cut_short_checkpoint_is_named_and_the_one_before_it_used(tmp_path, one_thread, caplog):
    segments, _ = tones(per_freq=2, seconds=0.25)
    model_params = ModelParams(residual_layers=2, residual_channels=8, dilation_cycle=2)
    run = lambda steps: train(segments, None, model_params, DiffusionParams(),  # noqa: E731
                              TrainParams(steps=steps, batch_size=2, crop_samples=1000, checkpoint_every=4, log_every=2,
                                          threads=1),
                              tmp_path / "model.pt", tmp_path / "ckpt", tmp_path / "loss.csv")  # fmt: skip
    run(8)
    newest = tmp_path / "ckpt" / "step-0000008.pt"
    newest.write_bytes(newest.read_bytes()[:1000])  # a copy interrupted, a full disk
    with caplog.at_level("WARNING", logger="cry_diffusion.train"):
        run(12)
    assert "step-0000008.pt is unreadable (PytorchStreamReader failed" in caplog.text and "resuming from the one before it" in caplog.text
    saved = torch.load(tmp_path / "model.pt", weights_only=True)
    assert saved["step"] == 12 and saved["unreadable_checkpoints"][0].startswith("step-0000008.pt: ")
    assert [int(r["step"]) for r in read_csv(tmp_path / "loss.csv")] == list(range(2, 13, 2))
    assert [p.name for p in checkpoints(tmp_path / "ckpt")] == ["step-0000008.pt", "step-0000012.pt"]  # rewritten whole

    for path in checkpoints(tmp_path / "ckpt"):
        path.write_bytes(b"")
    with pytest.raises(ValueError, match="no readable checkpoint in .*ckpt .*remove that folder"):
        run(16)

    model = tmp_path / "model.pt"
    model.write_bytes(model.read_bytes()[:500])
    with pytest.raises(ValueError, match=r"model\.pt is unreadable \(.*\): delete it and run the same command again"):
        load_model(model)


def test_learning_rate_schedules():
    from cry_diffusion.loop import LR_FLOOR, learning_rate_at

    plain = TrainParams(steps=100, learning_rate=1e-3)
    assert {learning_rate_at(plain, s) for s in (0, 50, 99)} == {1e-3}  # DiffWave's constant rate by default
    tp = TrainParams(steps=100, learning_rate=1e-3, warmup_steps=10, lr_schedule="cosine")
    assert learning_rate_at(tp, 0) == pytest.approx(1e-4) and learning_rate_at(tp, 9) == pytest.approx(1e-3)
    rates = [learning_rate_at(tp, s) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(rates, rates[1:]))
    assert rates[-1] == pytest.approx(LR_FLOOR * 1e-3)
    with pytest.raises(ValueError, match="lr_schedule"):
        train(np.zeros((2, 100), np.float32), None, ModelParams(residual_layers=1, residual_channels=2),
              DiffusionParams(), TrainParams(lr_schedule="step"), "m.pt", "c", "l.csv")
