"""Noise schedule, fast-sampler alignment and the three samplers.

    pytest tests/test_diffusion.py
"""

import functools
import math

import pytest
import torch
from torch import nn

from cry_diffusion import diffusion
from cry_diffusion.diffusion import DiffusionParams, add_noise, alignment, choose_sampler, sample
from cry_diffusion.model import DiffWave, ModelParams

P = DiffusionParams()


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_model(num_classes=0):
    torch.manual_seed(0)
    model = DiffWave(ModelParams(residual_layers=4, residual_channels=8, dilation_cycle=4, num_classes=num_classes))
    nn.init.normal_(model.output_projection.weight, std=0.3)  # a non-trivial (untrained) eps
    return model.eval()


def realish_audio(n=64, length=4000):
    # tones with a decaying envelope, peak ~0.5: roughly what normalised cry segments look like
    g = torch.Generator().manual_seed(0)
    t = torch.arange(length) / 16000
    f0 = 300 + 400 * torch.rand(n, 1, generator=g)
    return 0.5 * torch.sin(2 * math.pi * f0 * t) * torch.exp(-3 * t) + 0.02 * torch.randn(n, length, generator=g)


def test_forward_process_ends_near_standard_normal():
    x0 = realish_audio()
    g = torch.Generator().manual_seed(1)
    xT = add_noise(x0, torch.full((len(x0),), P.steps - 1), torch.randn(x0.shape, generator=g), P)
    abar = float(torch.cumprod(1 - diffusion.betas(P), 0)[-1])
    # DiffWave's unconditional schedule (T=200, beta 1e-4..0.02) keeps sqrt(abar_T) ~ 0.36 of the signal
    assert 0.1 < abar < 0.15
    assert abs(xT.mean()) < 0.02
    assert abs(xT.std() - 1) < 0.1
    expected_var = abar * x0.var() + (1 - abar)
    assert abs(xT.var() - expected_var) < 0.02
    x_early = add_noise(x0, torch.zeros(len(x0), dtype=torch.long), torch.randn(x0.shape, generator=g), P)
    assert abs((x_early - x0).std() - 0.01) < 0.001  # step 0 adds noise of std sqrt(beta_start)


def test_alignment_is_increasing_within_training_steps():
    for params in [P, DiffusionParams(steps=50, beta_end=0.05)]:
        t = alignment(params)
        assert len(t) == len(params.fast_betas)
        assert torch.all(t[1:] > t[:-1])
        assert t[0] >= 0 and t[-1] <= params.steps - 1
        # each aligned step reproduces the fast schedule's sqrt(abar) by linear interpolation
        root = torch.cumprod(1 - diffusion.betas(params), 0).sqrt()
        fast = torch.cumprod(1 - torch.tensor(params.fast_betas, dtype=torch.float64), 0).sqrt()
        lo = t.floor().long().clamp(max=params.steps - 2)
        interp = root[lo] + (t - lo) * (root[lo + 1] - root[lo])
        torch.testing.assert_close(interp, fast, atol=1e-9, rtol=0)
    # a fast schedule noisier than training clamps to the last training step
    assert alignment(DiffusionParams(steps=10, fast_betas=(0.001, 0.9, 0.9)))[-1] == 9


def test_choose_sampler():
    assert choose_sampler(200, P) == "ancestral"
    assert choose_sampler(6, P) == "fast"
    assert choose_sampler(7, P) == "fast_to_end"
    # fast betas that already reach the last training abar leave nothing to close: 4 steps are DDIM's
    assert choose_sampler(4, DiffusionParams(steps=10, fast_betas=(0.001, 0.9, 0.9))) == "ddim"
    assert choose_sampler(50, P) == "ddim"
    assert choose_sampler(1, P) == "ddim"
    assert choose_sampler(8, P, solver="dpmpp2m") == "dpmpp2m" and choose_sampler(7, P, solver="dpmpp2m") == "fast_to_end"


@pytest.mark.parametrize("steps", [200, 6, 20])
def test_samplers_finite_bounded_deterministic(steps):
    model = tiny_model()
    runs = [sample(model, P, 3, 500, steps=steps, generator=torch.Generator().manual_seed(7), batch_size=2)
            for _ in range(2)]
    assert runs[0].shape == (3, 500)
    assert torch.isfinite(runs[0]).all() and runs[0].abs().max() <= 1
    assert torch.equal(runs[0], runs[1])
    other = sample(model, P, 3, 500, steps=steps, generator=torch.Generator().manual_seed(8))
    assert not torch.equal(runs[0], other)


def test_guided_conditional_sampling_runs():
    model = tiny_model(num_classes=2)
    out = sample(model, P, 4, 300, steps=6, labels=[0, 1, 0, 1], guidance_scale=3.0,
                 generator=torch.Generator().manual_seed(0))
    assert out.shape == (4, 300) and torch.isfinite(out).all()


def test_guidance_combines_conditional_and_null_predictions():
    class LabelEcho(nn.Module):  # eps = label everywhere, so the mixing is visible
        null_label = 5

        def forward(self, x, t, label):
            return label.float()[:, None].expand_as(x)

    x = torch.zeros(2, 3)
    eps = diffusion._eps(LabelEcho(), x, torch.full((2,), 10.0), torch.tensor([1, 2]), guidance_scale=3.0)
    torch.testing.assert_close(eps[:, 0], torch.tensor([5 + 3 * (1 - 5), 5 + 3 * (2 - 5)], dtype=torch.float))


class Oracle(nn.Module):
    """Knows the clean signal x0, so returns the exact noise in x_t."""

    def __init__(self, x0, params):
        super().__init__()
        self.x0, self.abar = x0, torch.cumprod(1 - diffusion.betas(params), 0).float()

    def forward(self, x, t, label=None):
        a = self.abar[t.long()][:, None]
        return (x - a.sqrt() * self.x0) / (1 - a).sqrt()


@pytest.mark.parametrize("steps", [1, 10, 50])
def test_ddim_with_oracle_recovers_x0(steps):
    x0 = realish_audio(n=2, length=800)
    out = sample(Oracle(x0, P), P, 2, 800, sampler="ddim", steps=steps, device="cpu",
                 generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(out, x0, atol=1e-4, rtol=0)


def test_the_closing_beta_reaches_the_last_training_step():
    beta = diffusion.closing_beta(P)
    assert beta == pytest.approx(0.648, abs=1e-3)  # 0.376 x (1 - 0.648) = 0.132
    fast = diffusion.fast_schedule(P, "fast_to_end")
    assert len(fast) == 7 and fast[-1] == beta
    last = torch.cumprod(1 - diffusion.betas(P), 0)[-1]
    torch.testing.assert_close(torch.prod(1 - fast), last, atol=1e-12, rtol=0)
    assert alignment(P, fast)[-1] == P.steps - 1


class GaussianDenoiser(nn.Module):
    """The best possible noise estimate when the audio is white noise of std `s`, at fractional steps too."""

    def __init__(self, s, params):
        super().__init__()
        self.s, self.root = s, torch.cumprod(1 - diffusion.betas(params), 0).sqrt()

    def forward(self, x, t, label=None):
        lo = t.double().floor().long().clamp(max=len(self.root) - 2)
        abar = (self.root[lo] + (t.double() - lo) * (self.root[lo + 1] - self.root[lo])) ** 2
        abar = abar.float()[:, None]
        return (1 - abar).sqrt() * x / (abar * self.s**2 + 1 - abar)


def level_db(sampler, s):
    out = sample(GaussianDenoiser(s, P), P, 64, 2000, sampler=sampler, device="cpu",
                 generator=torch.Generator().manual_seed(0))
    return 20 * math.log10(float(out.std()) / s)


@pytest.mark.parametrize("s", [0.05, 0.3])
def test_few_step_chains_lose_level_to_their_variance_not_to_their_start(s):
    """With the best possible denoiser, the fast chains come out 3-4 dB quiet and the full chain within about 1 dB.

    Closing the schedule (starting where training ends) leaves the loss as it is: it comes from the posterior
    variance (beta tilde) of a few large steps, which leaves out the uncertainty of the clean-audio estimate.
    """
    full, paper, closed = (level_db(sampler, s) for sampler in ("ancestral", "fast", "fast_to_end"))
    assert full > -1.5, full
    assert paper < -2.5, paper
    assert abs(closed - paper) < 0.5, (closed, paper)


class VOracle(Oracle):
    """Knows x0, so returns the exact v = sqrt(abar) eps - sqrt(1 - abar) x0."""

    def forward(self, x, t, label=None):
        a = self.abar[t.long()][:, None]
        return a.sqrt() * super().forward(x, t) - (1 - a).sqrt() * self.x0


@pytest.mark.parametrize("sampler,steps", [("ddim", 10), ("dpmpp2m", 10), ("dpmpp2m", 3)])
def test_exact_predictions_recover_x0_whatever_the_model_predicts(sampler, steps):
    x0 = realish_audio(n=2, length=800)
    for oracle, params in ((Oracle(x0, P), P), (VOracle(x0, P), DiffusionParams(prediction="v"))):
        out = sample(oracle, params, 2, 800, sampler=sampler, steps=steps, device="cpu",
                     generator=torch.Generator().manual_seed(3))
        torch.testing.assert_close(out, x0, atol=1e-4, rtol=0)


def test_v_is_turned_into_the_same_noise_estimate_at_fractional_steps():
    """The fast chains query fractional steps: v's conversion there must agree with eps's."""
    x0, noise = realish_audio(n=3, length=50), torch.randn(3, 50, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([0.0, 57.3, 199.0])
    alpha = diffusion.root_alpha_bar(P, t)[:, None]
    sigma = (1 - alpha**2).sqrt()
    x = alpha * x0 + sigma * noise
    eps = diffusion._as_eps(alpha * noise - sigma * x0, x, t, DiffusionParams(prediction="v"))
    torch.testing.assert_close(eps, noise, atol=1e-5, rtol=0)
    integer = torch.cumprod(1 - diffusion.betas(P), 0).sqrt().float()
    torch.testing.assert_close(diffusion.root_alpha_bar(P, torch.tensor([0.0, 57.0, 199.0])), integer[[0, 57, 199]])


def test_dpm_solver_keeps_the_level_the_fast_chains_lose():
    """Perfect denoiser on white noise: DiffWave's fast chains come out 3-4 dB quiet (test above);
    DPM-Solver++(2M) in 7 steps stays within 1.5 dB (0.3-1.2 dB high when it was added)."""
    for s in (0.05, 0.3):
        out = sample(GaussianDenoiser(s, P), P, 64, 2000, sampler="dpmpp2m", steps=7, device="cpu",
                     generator=torch.Generator().manual_seed(0))
        assert abs(20 * math.log10(float(out.std()) / s)) < 1.5, s


def test_min_snr_weights():
    params_eps, params_v = P, DiffusionParams(prediction="v")
    t = torch.tensor([0, 100, 199])
    abar = torch.cumprod(1 - diffusion.betas(P), 0).float()[t]
    snr = abar / (1 - abar)
    torch.testing.assert_close(diffusion.min_snr_weight(params_eps, t, 5.0), snr.clamp(max=5) / snr)
    torch.testing.assert_close(diffusion.min_snr_weight(params_v, t, 5.0), snr.clamp(max=5) / (snr + 1))
    assert diffusion.min_snr_weight(params_eps, t, 5.0)[0] < 1e-3  # the cleanest step barely counts
    assert float(diffusion.min_snr_weight(params_eps, t, 5.0)[-1]) == 1.0  # noisy ones count fully


def test_the_default_loss_is_diffwaves_plain_noise_mse():
    """Unless a recipe option is chosen, the loss is what it was: eps-MSE, equal weights."""
    model = tiny_model()
    x0 = realish_audio(8, 2000)
    value = diffusion.loss(model, x0, params=P, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)
    t = torch.randint(0, P.steps, (8,), generator=g)
    noise = torch.randn(x0.shape, generator=g)
    with torch.no_grad():
        expected = torch.nn.functional.mse_loss(model(add_noise(x0, t, noise, P), t), noise)
    torch.testing.assert_close(value.detach(), expected)
    huge = diffusion.loss(model, x0, params=P, generator=torch.Generator().manual_seed(0), min_snr_gamma=1e9)
    torch.testing.assert_close(huge.detach(), expected)  # a gamma above every SNR weights nothing


def test_bad_sampler_arguments():
    model = tiny_model()
    with pytest.raises(ValueError):
        sample(model, P, 1, 100, sampler="euler", steps=10)
    with pytest.raises(ValueError):
        sample(model, P, 1, 100, sampler="ddim", steps=500)
    with pytest.raises(ValueError):
        sample(model, P, 1, 100, sampler="fast", steps=10)
    with pytest.raises(ValueError):
        sample(model, P, 1, 100, sampler="dpmpp2m", steps=0)
    with pytest.raises(ValueError):
        choose_sampler(10, P, solver="heun")
    with pytest.raises(ValueError):
        DiffusionParams(prediction="x0")


def test_loss_is_mse_near_one_for_untrained_model():
    model = DiffWave(ModelParams(residual_layers=2, residual_channels=8))  # zero output: eps_hat = 0
    value = diffusion.loss(model, realish_audio(8, 2000), params=P, generator=torch.Generator().manual_seed(0))
    assert abs(value.item() - 1) < 0.02


def test_params_round_trip():
    p = DiffusionParams(steps=50, beta_end=0.05, fast_betas=(0.001, 0.5))
    assert DiffusionParams.from_dict(p.to_dict()) == p


@pytest.mark.parametrize("steps", [200, 6, 20])
def test_graph_buffers_give_the_same_audio(steps):
    """The CUDA-graph path's fixed buffers (run eagerly on a CPU) change nothing: same audio, batch by batch,
    with a smaller last batch and per-batch labels under guidance."""
    model = tiny_model(num_classes=2)
    kwargs = dict(steps=steps, labels=[0, 1, 1, 0, 1], guidance_scale=2.0, batch_size=2)
    plain, graphed = (sample(model, P, 5, 300, generator=torch.Generator().manual_seed(4), graph=g, **kwargs)
                      for g in (False, True))
    torch.testing.assert_close(graphed, plain, atol=0, rtol=0)


def test_a_second_call_replays_the_steps_the_first_recorded():
    """Recorded once per (model, batch shape, dtype): a later call at the same shapes records nothing new, and its
    audio is the same; new weights loaded in place are read by the same replays."""
    model = tiny_model()
    run = functools.partial(sample, model, P, 3, 300, steps=6, batch_size=2, graph=True)
    first = run(generator=torch.Generator().manual_seed(4))
    (recorded,) = model._sampling_replays.values()
    kept = dict(recorded)
    assert sorted(key[0][0] for key in kept) == [1, 2]  # a full batch and the smaller last one
    torch.testing.assert_close(run(generator=torch.Generator().manual_seed(4)), first, atol=0, rtol=0)
    assert model._sampling_replays[next(iter(model._sampling_replays))] == kept
    with torch.no_grad():
        model.load_state_dict({k: v * 0.5 for k, v in model.state_dict().items()})
    again = run(generator=torch.Generator().manual_seed(4))
    assert len(model._sampling_replays) == 1 and not torch.equal(again, first)
    plain = sample(model, P, 3, 300, steps=6, batch_size=2, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(again, plain, atol=0, rtol=0)
