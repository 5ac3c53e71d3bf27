"""The diffusion process around DiffWave: noise schedule, training loss, and three samplers.

Training step t runs 0 .. T-1; x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps with
abar_t = prod_{i<=t} (1 - beta_i) and betas linear in [beta_start, beta_end].

Which sampler a number of inference steps gets (`choose_sampler`):
    steps == T                  -> "ancestral": the full DDPM chain, as DiffWave's paper
    steps == len(fast_betas)    -> "fast": DiffWave's fast sampler (paper appendix B)
    steps == len(fast_betas)+1  -> "fast_to_end": the same, with one more beta (`closing_beta`) that takes
                                   the schedule's abar down to training's last; see below
    anything else (1 .. T)      -> "ddim": deterministic DDIM (eta = 0) on steps spaced evenly in log-SNR
                                   (`ddim_steps`; "quadratic" and "linear" spacing as options), or with
                                   solver="dpmpp2m" DPM-Solver++(2M) (Lu et al. 2022) on the same steps

What the network predicts (`prediction`): "eps", the noise, as DiffWave; or "v" = sqrt(abar) eps -
sqrt(1 - abar) x0 (Salimans & Ho 2022), whose error does not vanish at the noisiest steps as an
eps error does. Every sampler works on the noise estimate, so a v-model's output is turned into
one (`_as_eps`) and the chains are the same for both.

Why "fast_to_end": DiffWave's 6 fast betas stop at abar 0.376 while training ends at 0.132, so the
fast chain starts its N(0, I) noise where training step ~138 sits and never uses steps 139-199; a
7th beta of 1 - 0.132 / 0.376 = 0.648 starts it where training ends. It does not bring back the
level that few-step chains lose: with the best possible denoiser on white-noise "audio"
(tests/test_diffusion.py), both fast chains come out 3-4 dB quiet and the full chain within 1 dB.
That loss comes from the posterior variance (beta tilde, as DiffWave) of a few large steps, which
leaves out the uncertainty of the clean-audio estimate; the tradeoff table measures both.

    python -c "from cry_diffusion.diffusion import *; print(alignment(DiffusionParams()))"
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from . import console
from .params import Params
from .runtime import Replay

SAMPLERS = ("ancestral", "fast", "fast_to_end", "ddim", "dpmpp2m")
SOLVERS = ("ddim", "dpmpp2m")  # what a step count that is neither T nor a fast schedule's length runs
DDIM_SPACINGS = ("logsnr", "quadratic", "linear")
PREDICTIONS = ("eps", "v")


@dataclass(frozen=True)  # frozen: hashable, so the schedule tensors can be cached per params
class DiffusionParams(Params):
    steps: int = 200  # T, training diffusion steps (DiffWave unconditional: 200)
    beta_start: float = 1e-4  # noise added at the first step
    beta_end: float = 0.02  # noise added at the last step
    fast_betas: tuple[float, ...] = (0.0001, 0.001, 0.01, 0.05, 0.2, 0.5)  # DiffWave's 6-step schedule
    prediction: str = "eps"  # what the network is trained to output: "eps" (DiffWave) or "v"
    clip: float = 1.0  # clean data lies in [-clip, clip] (audio: 1); samplers clip their clean estimate to it

    def __post_init__(self):
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"diffusion prediction must be one of {PREDICTIONS}, got {self.prediction!r}")


def betas(params: DiffusionParams) -> torch.Tensor:
    # float64: abar over 200 steps and the alignment below lose digits in float32
    return torch.linspace(params.beta_start, params.beta_end, params.steps, dtype=torch.float64)


@functools.lru_cache(maxsize=16)
def _alpha_bar(params: DiffusionParams, device: torch.device) -> torch.Tensor:
    return torch.cumprod(1 - betas(params), 0).float().to(device)


def _per_example(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """One value per example [B], shaped to scale a batch x [B, ...] of any rank (audio [B, T], mels [B, bands, frames])."""
    return v.view(-1, *[1] * (x.ndim - 1))


def add_noise(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, params: DiffusionParams | None = None):
    """x_t for a batch: x0 [B, ...] clean data (audio, or normalised log-mels), t [B] long training steps, noise ~ N(0, I)."""
    abar = _per_example(_alpha_bar(params or DiffusionParams(), x0.device)[t], x0)
    return abar.sqrt() * x0 + (1 - abar).sqrt() * noise


def root_alpha_bar(params: DiffusionParams, t: torch.Tensor) -> torch.Tensor:
    """sqrt(abar) at training steps t, fractional ones interpolated linearly as `alignment` places them."""
    root = _alpha_bar(params, t.device).sqrt()
    t = t.float().clamp(0, params.steps - 1)
    low = t.floor().long().clamp(max=params.steps - 2)
    frac = t - low
    return root[low] * (1 - frac) + root[low + 1] * frac


def min_snr_weight(params: DiffusionParams, t: torch.Tensor, gamma: float) -> torch.Tensor:
    """Min-SNR-gamma (Hang et al. 2023): each step's loss weighted as min(SNR, gamma) in clean-audio terms.

    The same weight expressed for what the network predicts: divided by SNR for eps, by SNR + 1 for v.
    Without it, the steps with little noise, which a network learns quickly and which shape little of
    what is heard, take as much of the gradient as the noisy ones that lay out a cry.
    """
    abar = _alpha_bar(params, t.device)[t]
    snr = abar / (1 - abar)
    return snr.clamp(max=gamma) / (snr if params.prediction == "eps" else snr + 1)


def loss(model, x0: torch.Tensor, label=None, params: DiffusionParams | None = None, generator=None,
         real: torch.Tensor | None = None, scored: torch.Tensor | float | None = None, min_snr_gamma: float = 0.0):
    """MSE between the model's prediction and its target (params.prediction), at a uniformly random step per example.

    label: what the model is conditioned on, passed as its third argument (a category per example, a
    log-mel per example for a vocoder, or None).
    real: [B] samples (or frames) of real data at the start of each example, in x0's last axis; the rest
    is zero padding, which the model sees but is not scored on (so it never learns that cries end in
    abrupt silence).
    scored: what the squared errors of the real samples are divided by (default: their number). Under
    torchrun, the mean number over ranks: DDP's average of the gradients is then the global mean.
    min_snr_gamma: > 0 weights each example by `min_snr_weight`; 0 is DiffWave's plain mean.
    """
    params = params or DiffusionParams()
    t = torch.randint(0, params.steps, (x0.shape[0],), device=x0.device, generator=generator)
    noise = torch.randn(x0.shape, device=x0.device, generator=generator)
    predicted = model(add_noise(x0, t, noise, params), t, label)
    target = noise
    if params.prediction == "v":
        abar = _per_example(_alpha_bar(params, x0.device)[t], x0)
        target = abar.sqrt() * noise - (1 - abar).sqrt() * x0
    if real is None and scored is None and not min_snr_gamma:
        return F.mse_loss(predicted, target)
    errors = (predicted.float() - target) ** 2
    if min_snr_gamma:
        errors = errors * _per_example(min_snr_weight(params, t, min_snr_gamma), errors)
    keep = None
    if real is not None:
        keep = torch.arange(x0.shape[-1], device=x0.device) < real[:, None]
        keep = keep.view(x0.shape[0], *[1] * (x0.ndim - 2), x0.shape[-1]).expand(x0.shape)
        errors = errors * keep
    if scored is None:
        scored = errors.numel() if keep is None else keep.sum()
    return errors.sum() / scored


def alignment(params: DiffusionParams, fast: torch.Tensor | None = None) -> torch.Tensor:
    """Fractional training step t_s for each step s of a fast schedule (default: fast_betas), increasing, in [0, T-1].

    DiffWave appendix B: pick t_s so that sqrt(abar) interpolated linearly between training
    steps t and t+1 equals the fast schedule's sqrt(abar_s).
    """
    root = torch.cumprod(1 - betas(params), 0).sqrt()
    fast = torch.tensor(params.fast_betas, dtype=torch.float64) if fast is None else fast
    fast_root = torch.cumprod(1 - fast, 0).sqrt()
    out = []
    for r in fast_root.tolist():
        if r >= root[0]:  # no noisier than the first training step
            out.append(0.0)
        elif r <= root[-1]:  # noisier than anything seen in training: the last step is the best guess
            out.append(float(params.steps - 1))
        else:
            t = int(torch.nonzero(root >= r)[-1])  # root is decreasing: root[t] >= r > root[t+1]
            out.append(t + float((root[t] - r) / (root[t] - root[t + 1])))
    return torch.tensor(out, dtype=torch.float64)


def closing_beta(params: DiffusionParams) -> float | None:
    """The beta that, after the fast ones, reaches the training schedule's last abar (None: they already do)."""
    fast_abar = float(torch.prod(1 - torch.tensor(params.fast_betas, dtype=torch.float64)))
    last_abar = float(torch.cumprod(1 - betas(params), 0)[-1])
    beta = 1 - last_abar / fast_abar
    return beta if beta > 0 else None


def fast_schedule(params: DiffusionParams, sampler: str = "fast") -> torch.Tensor:
    """The betas of a fast sampler: DiffWave's, or ("fast_to_end") those and the closing beta."""
    fast = list(params.fast_betas)
    if sampler == "fast_to_end":
        if (beta := closing_beta(params)) is None:
            raise ValueError("the fast betas already reach the training schedule's last abar: nothing to close")
        fast.append(beta)
    return torch.tensor(fast, dtype=torch.float64)


def choose_sampler(steps: int, params: DiffusionParams, solver: str = "ddim") -> str:
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
    if steps == params.steps:
        return "ancestral"
    if steps == len(params.fast_betas):
        return "fast"
    if steps == len(params.fast_betas) + 1 and closing_beta(params) is not None:
        return "fast_to_end"
    return solver


def _randn(shape, generator, device):
    # on the generator's device: a CPU generator gives the same audio on any device, a device one
    # keeps a GPU from waiting on a host-to-device copy of the noise at every step
    return torch.randn(shape, generator=generator, device=generator.device if generator else device).to(device)


def _as_eps(out: torch.Tensor, x: torch.Tensor, t: torch.Tensor, params: DiffusionParams) -> torch.Tensor:
    """The noise estimate from what the network gives: itself for eps, sigma x + alpha v for v."""
    if params.prediction == "eps":
        return out
    alpha = _per_example(root_alpha_bar(params, t), x)
    return (1 - alpha**2).sqrt() * x + alpha * out


def _eps(model, x, t: torch.Tensor, labels=None, guidance_scale: float = 1.0, autocast=None,
         params: DiffusionParams | None = None):
    """The model's noise estimate at steps t [B] (float32), with classifier-free guidance when asked."""
    with torch.autocast(x.device.type, dtype=autocast or torch.float32, enabled=autocast is not None,
                        cache_enabled=False):  # no cached casts: a CUDA graph must record every kernel it reads
        if labels is None or guidance_scale == 1.0:
            out = model(x, t, labels)
        else:
            null = torch.full_like(labels, model.null_label)
            cond, uncond = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([labels, null])).chunk(2)
            out = uncond + guidance_scale * (cond - uncond)
    return _as_eps(out.float(), x, t, params or DiffusionParams())


def _ddpm_chain(eps, x, beta: torch.Tensor, model_steps: torch.Tensor, generator):
    """Ancestral DDPM updates for the schedule `beta`; step s queries the model at model_steps[s]."""
    alpha, abar = 1 - beta, torch.cumprod(1 - beta, 0)
    scale = (1 / alpha.sqrt()).tolist()
    eps_scale = (beta / (1 - abar).sqrt() / alpha.sqrt()).tolist()
    # DDPM posterior std, as DiffWave: sigma_s^2 = (1 - abar_{s-1}) / (1 - abar_s) * beta_s
    sigma = [0.0] + ((1 - abar[:-1]) / (1 - abar[1:]) * beta[1:]).sqrt().tolist()
    t = model_steps.expand(x.shape[0], -1)
    for s in reversed(range(len(beta))):
        x = torch.add(x * scale[s], eps(x, t[:, s]), alpha=-eps_scale[s])
        if s > 0:
            x = x.add_(_randn(x.shape, generator, x.device), alpha=sigma[s])
    return x


def ddim_steps(params: DiffusionParams, steps: int, spacing: str = "logsnr") -> list[int]:
    """The training steps DDIM visits, from the noisiest down, distinct.

    "linear" (evenly spaced steps, as DDIM's paper for CIFAR) spends few steps where the
    signal-to-noise ratio changes fastest: with the best possible denoiser, 7 steps came out
    7.9 dB quiet. "logsnr" spaces them evenly in log(abar / (1 - abar)) (1.4-1.5 dB at 7 and
    12 steps); "quadratic" is DDIM's other schedule, dense near the clean end.
    """
    if spacing not in DDIM_SPACINGS:
        raise ValueError(f"DDIM spacing must be one of {DDIM_SPACINGS}, got {spacing!r}")
    last = params.steps - 1
    if spacing == "linear" or steps >= params.steps:
        return torch.linspace(last, 0, steps).round().long().tolist()
    if spacing == "quadratic":
        ts = (torch.linspace(1, 0, steps, dtype=torch.float64) ** 2 * last).round().long().tolist()
    else:
        abar = torch.cumprod(1 - betas(params), 0)
        logsnr = torch.log(abar / (1 - abar))  # decreasing in t
        targets = torch.linspace(float(logsnr[-1]), float(logsnr[0]), steps, dtype=torch.float64)
        ts = [int(torch.argmin((logsnr - v).abs())) for v in targets.tolist()]
    rising = []  # distinct: where rounding merges steps near the clean end, each takes the next free one above
    for t in reversed(ts):
        rising.append(max(t, rising[-1] + 1) if rising else t)
    return rising[::-1] if rising[-1] <= last else torch.linspace(last, 0, steps).round().long().tolist()


def _clean_estimate(x, e, abar: float, clip: float = 1.0):
    """x0 from x_t and the noise estimate, clipped to the data's range: early (very noisy) steps can overshoot."""
    return ((x - math.sqrt(1 - abar) * e) / math.sqrt(abar)).clamp(-clip, clip)


def _ddim(eps, x, params: DiffusionParams, steps: int, spacing: str = "logsnr"):
    abar = torch.cumprod(1 - betas(params), 0)
    ts = ddim_steps(params, steps, spacing)
    t = torch.tensor(ts, dtype=torch.float32, device=x.device).expand(x.shape[0], -1)
    for i, step in enumerate(ts):
        e = eps(x, t[:, i])
        x0 = _clean_estimate(x, e, float(abar[step]), params.clip)
        a_prev = float(abar[ts[i + 1]]) if i + 1 < len(ts) else 1.0
        x = a_prev**0.5 * x0 + (1 - a_prev) ** 0.5 * e
    return x


def _dpmpp2m(eps, x, params: DiffusionParams, steps: int, spacing: str = "logsnr"):
    """DPM-Solver++(2M) (Lu et al. 2022) on the same steps as DDIM, in its clean-audio form.

    Each step's clean-audio estimate is combined with the previous step's (a second-order,
    multistep update in log-SNR); the last step, to no noise at all, is first order, as the
    solver's "lower order final", since its log-SNR step is infinite.
    """
    abar = torch.cumprod(1 - betas(params), 0)
    ts = ddim_steps(params, steps, spacing)
    alpha, sigma = abar.sqrt(), (1 - abar).sqrt()
    lam = torch.log(alpha / sigma)
    t = torch.tensor(ts, dtype=torch.float32, device=x.device).expand(x.shape[0], -1)
    previous, h_previous = None, None
    for i, step in enumerate(ts):
        e = eps(x, t[:, i])
        x0 = _clean_estimate(x, e, float(abar[step]), params.clip)
        if i + 1 == len(ts):
            return x0
        nxt = ts[i + 1]
        h = float(lam[nxt] - lam[step])
        d = x0
        if previous is not None:
            r = h_previous / h
            d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * previous
        x = float(sigma[nxt] / sigma[step]) * x - float(alpha[nxt]) * math.expm1(-h) * d
        previous, h_previous = x0, h
    return x


def _replays(model, *how) -> dict:
    """The recorded steps of `model` sampled this way, kept on the model from one sample() call to the next.

    Recording is the slow part (warm-up runs, cuDNN autotuning, the capture itself), and a graph stays valid
    for as long as the weights stay in the same memory: load_state_dict copies into it, so snapshot after
    snapshot replays the same graph. Moving or casting the model gives its parameters new memory, and the
    first one's address in the key makes that a new set of graphs.
    """
    cache = model.__dict__.setdefault("_sampling_replays", {})
    return cache.setdefault((next(model.parameters()).data_ptr(), *how), {})


def sample(model, params: DiffusionParams, n: int, length: int | tuple[int, ...], sampler: str | None = None,
           steps: int | None = None, labels=None, guidance_scale: float = 1.0, generator: torch.Generator | None = None,
           device=None, batch_size: int | None = None, autocast: torch.dtype | None = None,
           graph: bool = False, ddim_spacing: str = "logsnr", condition: torch.Tensor | None = None) -> torch.Tensor:
    """Generate n waveforms of `length` samples -> [n, length] in [-1, 1] (or n arrays of the shape `length`).

    sampler None picks one from `steps` (see module docstring); "ancestral" always runs T steps,
    "fast" len(fast_betas) and "fast_to_end" one more, so for them `steps` may be None. labels (one int, or n of them;
    class-conditional models only) with guidance_scale != 1 use classifier-free guidance
    against the null class. A seeded `generator` makes the result reproducible on its device.
    autocast: the dtype the model runs in (None: float32). graph: record one denoising step
    as a CUDA graph per batch shape and replay it (cry_diffusion.runtime.Replay), the same graph
    again in later calls with this model, device, dtype and guidance; on a CPU the same fixed
    buffers run eagerly, which is how the tests check the graph path's logic.
    ddim_spacing: which steps DDIM and DPM-Solver++ visit (`ddim_steps`). condition: [n, ...] what each
    output is made from (a vocoder's log-mels), given to the model as its third argument; not with labels.

    Steps reach the model as float32 always (whole numbers for ancestral and DDIM, fractions
    for the fast schedule), so a compiled or graphed model sees one input type throughout.
    """
    sampler, calls = _sampler_and_calls(params, sampler, steps)
    device = torch.device(device or next(model.parameters()).device)
    if labels is not None:
        labels = torch.as_tensor(labels, dtype=torch.long, device=device).expand(n)
    if condition is not None:
        if labels is not None or guidance_scale != 1.0:
            raise ValueError("a condition is given instead of labels, and without guidance")
        labels = condition.to(device)
    shape = (length,) if isinstance(length, int) else tuple(length)
    batch_size = batch_size or n
    model_eps = functools.partial(_eps, model, guidance_scale=guidance_scale, autocast=autocast, params=params)
    replays = _replays(model, device, autocast, guidance_scale, params.prediction) if graph else {}

    def denoiser(x, lab):
        extra = () if lab is None else (lab,)  # labels ride along as an input, so a replay takes each batch's own
        if not graph:
            return lambda x, t: model_eps(x, t, *extra)
        key = (x.shape, len(extra))  # the last batch may be smaller
        if key not in replays:
            replays[key] = Replay(lambda x, t, *lab: model_eps(x, t, *lab), x, x.new_zeros(len(x)), *extra,
                                  capture=device.type == "cuda")
        return lambda x, t: replays[key](x, t, *extra)

    ticker = console.Ticker("sampling", -(-n // batch_size) * calls, unit="denoising step")
    out = []
    with torch.inference_mode():
        for i in range(0, n, batch_size):
            b = min(batch_size, n - i)
            x = _randn((b, *shape), generator, device)
            call = ticker.counting(denoiser(x, None if labels is None else labels[i:i + b]))
            out.append(_denoise(call, x, params, sampler, steps, ddim_spacing, generator))
    return torch.cat(out)


def _sampler_and_calls(params: DiffusionParams, sampler: str | None, steps: int | None) -> tuple[str, int]:
    """sample()'s sampler (None: chosen from `steps`) and the model calls it makes per batch; a mismatch raises."""
    if sampler is None:
        sampler = choose_sampler(steps or params.steps, params)
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    fixed = {"ancestral": params.steps, "fast": len(params.fast_betas), "fast_to_end": len(params.fast_betas) + 1}
    if sampler in fixed and steps not in (None, fixed[sampler]):
        raise ValueError(f"{sampler} always takes {fixed[sampler]} steps, got steps={steps}")
    if sampler in SOLVERS and not (steps and 1 <= steps <= params.steps):
        raise ValueError(f"{sampler} needs 1 <= steps <= {params.steps}, got {steps}")
    return sampler, fixed.get(sampler, steps)


def _denoise(eps, x, params: DiffusionParams, sampler: str, steps: int | None, spacing: str, generator) -> torch.Tensor:
    """One batch of noise `x` taken by `sampler`'s chain to clean audio, clamped to the data's range."""
    if sampler == "ancestral":
        model_steps = torch.arange(params.steps, dtype=torch.float32, device=x.device)
        x = _ddpm_chain(eps, x, betas(params), model_steps, generator)
    elif sampler.startswith("fast"):
        fast = fast_schedule(params, sampler)
        x = _ddpm_chain(eps, x, fast, alignment(params, fast).float().to(x.device), generator)
    elif sampler == "dpmpp2m":
        x = _dpmpp2m(eps, x, params, steps, spacing)
    else:
        x = _ddim(eps, x, params, steps, spacing)
    return x.clamp(-params.clip, params.clip)
