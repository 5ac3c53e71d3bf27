"""DiffWave: a non-causal dilated-convolution network that predicts the noise in a noisy waveform.

Kong et al. 2021 (arXiv 2009.09761), unconditional, as used for infant cries by
Hoq & Nwogu (arXiv 2410.09360). Optionally class-conditional (num_classes > 0),
with one extra "null" class for classifier-free guidance.

    python -c "from cry_diffusion.model import DiffWave, ModelParams; print(DiffWave(ModelParams()))"
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .params import Params

STEP_HIDDEN = 512  # width of the diffusion-step (and class) embedding after the MLP, as DiffWave


@dataclass
class ModelParams(Params):
    residual_layers: int = 30  # depth N; the paper's unconditional model uses 36, lmnt's default 30
    residual_channels: int = 64  # width C of every residual layer
    dilation_cycle: int = 10  # dilations run 1, 2, ..., 2**(cycle-1) and repeat
    step_embedding_dim: int = 128  # sinusoidal features of the diffusion step (half sin, half cos)
    num_classes: int = 0  # 0 = unconditional (the paper); >0 adds a class embedding + a null class


class ResidualLayer(nn.Module):
    """One gated residual layer: DiffWave's arithmetic, with its elementwise work cut (benchmarks/training.py).

    - tanh(b) = 1 - 2 sigmoid(-2b): with the filter half's weights scaled by -2, one sigmoid over
      both halves and one addcmul give sigmoid(a) * tanh(b) (tanh is the dearest elementwise op on
      a CPU, and the plain form takes three passes over the activations). In float32 only: in
      bf16, 1 - 2 sigmoid(-2b) near b = 0 is off by 3.4e-3 against tanh's 3.1e-4, and under
      autocast (a GPU) torch.compile fuses the plain form anyway, so autocast (or a model
      cast to half precision) takes tanh.
    - the 1/sqrt(2) of the residual update is folded into the projection's residual rows, so
      x + residual and the scaling are one pass.
    The parameters are the plain layer's: checkpoints are interchangeable, and a test holds the
    outputs and gradients to those of the textbook form.
    """

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        # padding == dilation keeps the length and makes the layer see both past and future
        self.dilated_conv = nn.Conv1d(channels, 2 * channels, 3, padding=dilation, dilation=dilation)
        # one 1x1 conv yields both the residual and the skip half: one kernel launch instead of two
        self.output_projection = nn.Conv1d(channels, 2 * channels, 1)
        one = torch.ones(channels)
        self.register_buffer("gate_scale", torch.cat([one, -2 * one]), persistent=False)
        self.register_buffer("out_scale", torch.cat([one * math.sqrt(0.5), one]), persistent=False)

    def forward(self, x: torch.Tensor, step_bias: torch.Tensor,
                conditioner: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """conditioner: [B, 2C, T] added to the dilated convolution's output, as DiffWave's vocoder adds its mel."""
        conv, proj = self.dilated_conv, self.output_projection
        if x.dtype != torch.float32 or torch.is_autocast_enabled(x.device.type):
            y = conv(x + step_bias)
            a, b = (y if conditioner is None else y + conditioner).chunk(2, dim=1)
            y = torch.sigmoid(a) * torch.tanh(b)
        else:
            y = F.conv1d(x + step_bias, conv.weight * self.gate_scale[:, None, None], conv.bias * self.gate_scale,
                         padding=conv.padding, dilation=conv.dilation)
            if conditioner is not None:
                y = torch.addcmul(y, conditioner, self.gate_scale[:, None])
            gate, filt = torch.sigmoid(y).chunk(2, dim=1)
            y = torch.addcmul(gate, gate, filt, value=-2.0)  # sigmoid(a) * (1 - 2 sigmoid(-2b)) = sigmoid(a) * tanh(b)
        residual, skip = F.conv1d(y, proj.weight * self.out_scale[:, None, None], proj.bias * self.out_scale).chunk(2, dim=1)
        # (x + residual) / sqrt(2): keeps the variance of the residual stream from growing with depth
        return torch.add(residual, x, alpha=math.sqrt(0.5)), skip

    def fused(self, x: torch.Tensor, step_bias: torch.Tensor, skip: torch.Tensor | None):
        """The same layer as Triton kernels (cry_diffusion.fused): (x_next, skip + this layer's skip).

        Under autocast the inputs and weights are cast to its dtype here, as autocast would for a conv.
        """
        from . import fused

        dev = x.device.type
        dtype = torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else x.dtype
        conv, proj = self.dilated_conv, self.output_projection
        weights = [t.to(dtype) for t in (conv.weight, conv.bias, proj.weight, proj.bias)]
        with torch.autocast(dev, enabled=False):
            return fused.residual_layer(x.to(dtype), step_bias.to(dtype), None if skip is None else skip.to(dtype),
                                        *weights, conv.dilation[0])


LAYER_KERNELS = ("torch", "triton")


def _keep_out_of_compile(cls) -> None:
    """torch.compiler.disable on cls._fused_layers, as a decorator would, but only in a process whose models use
    the fused kernels: the decorator imports torch._dynamo, 1.3 s of every sampling and scoring job's start on a CPU."""
    if not getattr(cls._fused_layers, "kept_out_of_compile", False):
        kept = torch.compiler.disable(cls._fused_layers)
        kept.kept_out_of_compile = True
        cls._fused_layers = kept


class DiffWave(nn.Module):
    def __init__(self, params: ModelParams | None = None, data_channels: int = 1):
        """data_channels: channels of what is denoised: 1 for audio; a mel prior's bands (cry_diffusion.prior)."""
        super().__init__()
        self.params = p = params or ModelParams()
        self.layer_kernel = "torch"  # how the residual layers run (use_layer_kernel); the weights don't depend on it
        C, N = p.residual_channels, p.residual_layers
        self.input_projection = nn.Conv1d(data_channels, C, 1)

        self.step_mlp = nn.Sequential(
            nn.Linear(p.step_embedding_dim, STEP_HIDDEN), nn.SiLU(), nn.Linear(STEP_HIDDEN, STEP_HIDDEN), nn.SiLU()
        )
        # index num_classes is the "null" class: trained by label dropout, used for unconditional/guidance
        self.label_embedding = nn.Embedding(p.num_classes + 1, STEP_HIDDEN) if p.num_classes > 0 else None
        # all N per-layer projections of the step embedding as one matmul (rows [i*C:(i+1)*C] = layer i)
        self.step_projection = nn.Linear(STEP_HIDDEN, N * C)

        self.layers = nn.ModuleList(ResidualLayer(C, 2 ** (i % p.dilation_cycle)) for i in range(N))
        self.skip_projection = nn.Conv1d(C, C, 1)
        self.output_projection = nn.Conv1d(C, data_channels, 1)

        for m in self.modules():
            if isinstance(m, nn.Conv1d):
                nn.init.kaiming_normal_(m.weight)
        # zero output: the untrained model predicts eps = 0, so the first loss is exactly E[eps^2] = 1
        nn.init.zeros_(self.output_projection.weight)
        nn.init.zeros_(self.output_projection.bias)
        if self.label_embedding is not None:
            # N(0, 1) rows would swamp the step embedding (SiLU outputs ~0.5) and hide the step at first;
            # from zero the conditional model starts as the unconditional one and learns the classes
            nn.init.zeros_(self.label_embedding.weight)

    def use_layer_kernel(self, kernel: str, device) -> DiffWave:
        """Run the residual layers as PyTorch ops ("torch") or as fused Triton kernels ("triton", cry_diffusion.fused).

        Raises ValueError where the kernels can't run: no triton package, a width they don't
        support, or a device other than a CUDA GPU (unless TRITON_INTERPRET=1, as in the tests).
        """
        if kernel not in LAYER_KERNELS:
            raise ValueError(f"layer_kernel must be one of {LAYER_KERNELS}, not {kernel!r}")
        if kernel == "triton":
            try:
                from . import fused
            except ImportError as e:
                raise ValueError(f"layer_kernel 'triton' needs the triton package (CUDA builds of torch bring it): "
                                 f"{e}") from e
            fused.check(self.params.residual_channels, torch.device(device))
            _keep_out_of_compile(DiffWave)
        self.layer_kernel = kernel
        return self

    # The whole stack, not each layer: a graph break inside the loop makes torch.compile give up on
    # forward() altogether, for every DiffWave in the process (the plain one then ran 25 graphs, not 1).
    # Kept out of torch.compile by _keep_out_of_compile, once a model asks for the kernels.
    def _fused_layers(self, x: torch.Tensor, step_biases) -> torch.Tensor:
        """The residual layers as Triton kernels -> the sum of their skips."""
        skip = None
        for layer, bias in zip(self.layers, step_biases):
            x, skip = layer.fused(x, bias, skip)
        return skip

    @property
    def null_label(self) -> int:
        return self.params.num_classes

    @property
    def receptive_field(self) -> int:
        """Samples that can influence one output sample (centred: half before, half after)."""
        p = self.params
        return 1 + 2 * sum(2 ** (i % p.dilation_cycle) for i in range(p.residual_layers))

    def _sinusoids(self, step: torch.Tensor) -> torch.Tensor:
        half = self.params.step_embedding_dim // 2
        # geometric frequencies 1 .. 1e4 rad/step, as DiffWave. float64: at step 199 the top phase is
        # ~2e6 rad, where float32 rounding alone moves it by ~0.1 rad (and differently per device)
        freqs = 10.0 ** (torch.arange(half, dtype=torch.float64, device=step.device) * 4.0 / max(half - 1, 1))
        angles = step.double()[:, None] * freqs[None, :]
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1).float()

    def step_embedding(self, step: torch.Tensor) -> torch.Tensor:
        if not step.is_floating_point():
            return self._sinusoids(step)
        # A fractional step (fast sampler) blends the two neighbouring integer embeddings: the
        # high frequencies make sin(t*f) at fractional t something training never showed the net.
        low = step.floor()
        return torch.lerp(self._sinusoids(low), self._sinusoids(low + 1), (step - low)[:, None].float())

    def forward(self, audio: torch.Tensor, step: torch.Tensor, label: torch.Tensor | None = None,
                conditioners: list[torch.Tensor] | None = None) -> torch.Tensor:
        """audio [B, T], step [B] (long, or float for aligned fast sampling), label [B] long or None -> eps [B, T].

        With data_channels > 1 the data is [B, data_channels, T] (a mel prior's log-mels), and so is the
        prediction. conditioners: one per layer, added inside it (`ResidualLayer`; DiffWave's vocoder).
        """
        B, N, C = audio.shape[0], self.params.residual_layers, self.params.residual_channels
        x = F.relu(self.input_projection(audio.unsqueeze(1) if audio.ndim == 2 else audio))

        e = self.step_mlp(self.step_embedding(step))
        if self.label_embedding is not None:
            if label is None:
                label = torch.full((B,), self.null_label, dtype=torch.long, device=audio.device)
            e = e + self.label_embedding(label)
        elif label is not None:
            raise ValueError("this model is unconditional (num_classes=0) but got labels")
        step_biases = self.step_projection(e).view(B, N, C, 1).unbind(1)

        if self.layer_kernel == "triton":
            skip = self._fused_layers(x, step_biases)
        else:
            skip = None
            for layer, bias, cond in zip(self.layers, step_biases, conditioners or [None] * N):
                x, s = layer(x, bias, cond)
                # a running sum instead of stacking N skip tensors: same result, 1/N of the memory
                skip = s if skip is None else skip + s
        x = F.relu(self.skip_projection(skip * (1.0 / math.sqrt(N))))
        out = self.output_projection(x)
        return out.squeeze(1) if audio.ndim == 2 else out
