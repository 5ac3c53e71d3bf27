"""DiffWave network: shapes, non-causal receptive field, and equality with a plain reference.

    pytest tests/test_model.py
"""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cry_diffusion.model import DiffWave, ModelParams

SMALL = ModelParams(residual_layers=6, residual_channels=16, dilation_cycle=3)


pytestmark = pytest.mark.usefixtures("one_thread")


def randomised(model: DiffWave) -> DiffWave:
    # the real output layer starts at zero, which would make every comparison trivially pass
    torch.manual_seed(1)
    nn.init.normal_(model.output_projection.weight, std=0.5)
    nn.init.normal_(model.output_projection.bias, std=0.1)
    if model.label_embedding is not None:  # zero at first too: every class would look the same
        nn.init.normal_(model.label_embedding.weight)
    return model.eval()


class ReferenceDiffWave(nn.Module):
    """DiffWave written the obvious way: one Linear per layer, separate residual/skip convs, stacked skips."""

    def __init__(self, p: ModelParams):
        super().__init__()
        C, N = p.residual_channels, p.residual_layers
        self.p = p
        self.inp = nn.Conv1d(1, C, 1)
        self.mlp1, self.mlp2 = nn.Linear(p.step_embedding_dim, 512), nn.Linear(512, 512)
        self.label = nn.Embedding(p.num_classes + 1, 512) if p.num_classes else None
        self.proj = nn.ModuleList(nn.Linear(512, C) for _ in range(N))
        self.dil = nn.ModuleList(
            nn.Conv1d(C, 2 * C, 3, padding=2 ** (i % p.dilation_cycle), dilation=2 ** (i % p.dilation_cycle))
            for i in range(N))
        self.res = nn.ModuleList(nn.Conv1d(C, C, 1) for _ in range(N))
        self.skip = nn.ModuleList(nn.Conv1d(C, C, 1) for _ in range(N))
        self.skip_out, self.out = nn.Conv1d(C, C, 1), nn.Conv1d(C, 1, 1)

    def copy_from(self, m: DiffWave):
        C = self.p.residual_channels
        with torch.no_grad():
            self.inp.load_state_dict(m.input_projection.state_dict())
            self.mlp1.load_state_dict(m.step_mlp[0].state_dict())
            self.mlp2.load_state_dict(m.step_mlp[2].state_dict())
            if self.label is not None:
                self.label.load_state_dict(m.label_embedding.state_dict())
            for i, layer in enumerate(m.layers):
                self.proj[i].weight.copy_(m.step_projection.weight[i * C:(i + 1) * C])
                self.proj[i].bias.copy_(m.step_projection.bias[i * C:(i + 1) * C])
                self.dil[i].load_state_dict(layer.dilated_conv.state_dict())
                w, b = layer.output_projection.weight, layer.output_projection.bias
                self.res[i].weight.copy_(w[:C]), self.res[i].bias.copy_(b[:C])
                self.skip[i].weight.copy_(w[C:]), self.skip[i].bias.copy_(b[C:])
            self.skip_out.load_state_dict(m.skip_projection.state_dict())
            self.out.load_state_dict(m.output_projection.state_dict())
        return self

    def forward(self, audio, step, label=None):
        half = self.p.step_embedding_dim // 2
        freqs = torch.tensor([10.0 ** (j * 4.0 / (half - 1)) for j in range(half)], dtype=torch.float64)
        angles = step.double()[:, None] * freqs[None]
        e = F.silu(self.mlp2(F.silu(self.mlp1(torch.cat([angles.sin(), angles.cos()], 1).float()))))
        if self.label is not None:
            e = e + self.label(label)
        x = F.relu(self.inp(audio[:, None]))
        skips = []
        for i in range(self.p.residual_layers):
            y = self.dil[i](x + self.proj[i](e)[:, :, None])
            C = self.p.residual_channels
            y = torch.sigmoid(y[:, :C]) * torch.tanh(y[:, C:])
            x = (x + self.res[i](y)) / math.sqrt(2)
            skips.append(self.skip[i](y))
        x = torch.stack(skips).sum(0) / math.sqrt(self.p.residual_layers)
        return self.out(F.relu(self.skip_out(x)))[:, 0]


def test_output_shape_and_zero_init():
    model = DiffWave(SMALL)
    eps = model(torch.randn(3, 1000), torch.tensor([0, 5, 199]))
    assert eps.shape == (3, 1000)
    assert torch.all(eps == 0)  # zero-initialised output layer
    assert model(torch.randn(2, 777), torch.tensor([1.5, 3.25])).shape == (2, 777)


def test_non_causal_receptive_field():
    model = randomised(DiffWave(SMALL))
    half = model.receptive_field // 2  # dilations 1,2,4,1,2,4: 14 samples each side
    assert half == 14
    x, t = torch.randn(1, 400), torch.tensor([10])
    x2 = x.clone()
    x2[0, 200] += 1.0
    with torch.no_grad():
        diff = (model(x2, t) - model(x, t)).abs()[0]
    assert diff[200 - half] > 0  # an earlier output sees this later sample: non-causal
    assert diff[200 + half] > 0
    assert torch.all(diff[:200 - half] == 0) and torch.all(diff[200 + half + 1:] == 0)


@pytest.mark.parametrize("num_classes", [0, 3])
def test_matches_plain_reference(num_classes):
    p = ModelParams(residual_layers=7, residual_channels=12, dilation_cycle=4, num_classes=num_classes)
    model = randomised(DiffWave(p))
    ref = ReferenceDiffWave(p).copy_from(model).eval()
    x, t = torch.randn(4, 600), torch.tensor([0, 17, 98, 199])
    label = torch.tensor([0, 1, 2, 3]) if num_classes else None
    with torch.no_grad():
        torch.testing.assert_close(model(x, t, label), ref(x, t, label), atol=1e-5, rtol=1e-5)
        # integer-valued float steps (fast sampler) give the very same embedding
        torch.testing.assert_close(model(x, t.float(), label), ref(x, t, label), atol=1e-5, rtol=1e-5)


def test_gradients_match_plain_reference():
    """The fused gate and folded scalings (model.ResidualLayer) must train exactly like the textbook layer."""
    p = ModelParams(residual_layers=5, residual_channels=8, dilation_cycle=3)
    model = randomised(DiffWave(p)).train()
    ref = ReferenceDiffWave(p).copy_from(model).train()
    x, t = torch.randn(3, 500), torch.tensor([3, 60, 190])
    target = torch.randn(3, 500)
    for m in (model, ref):
        F.mse_loss(m(x, t), target).backward()
    C = p.residual_channels
    for i, layer in enumerate(model.layers):
        torch.testing.assert_close(layer.dilated_conv.weight.grad, ref.dil[i].weight.grad, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(layer.dilated_conv.bias.grad, ref.dil[i].bias.grad, atol=1e-5, rtol=1e-4)
        # the last layer's residual feeds nothing: no gradient in the plain form, zeros in ours
        res_grad = ref.res[i].weight.grad if ref.res[i].weight.grad is not None else torch.zeros_like(ref.res[i].weight)
        torch.testing.assert_close(layer.output_projection.weight.grad[:C], res_grad, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(layer.output_projection.weight.grad[C:], ref.skip[i].weight.grad, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(model.input_projection.weight.grad, ref.inp.weight.grad, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(model.step_projection.weight.grad[:C], ref.proj[0].weight.grad, atol=1e-5, rtol=1e-4)


def test_fractional_step_interpolates_between_neighbours():
    model = DiffWave(SMALL)
    e = model.step_embedding(torch.tensor([3.25]))
    lo, hi = model.step_embedding(torch.tensor([3])), model.step_embedding(torch.tensor([4]))
    torch.testing.assert_close(e, 0.75 * lo + 0.25 * hi)


def test_conditional_none_label_is_null_label():
    model = randomised(DiffWave(ModelParams(residual_layers=4, residual_channels=8, num_classes=2)))
    x, t = torch.randn(2, 300), torch.tensor([3, 50])
    with torch.no_grad():
        unconditional = model(x, t, None)
        torch.testing.assert_close(unconditional, model(x, t, torch.full((2,), model.null_label)))
        assert not torch.allclose(unconditional, model(x, t, torch.tensor([0, 1])))
    with pytest.raises(ValueError):
        DiffWave(SMALL)(x, t, torch.tensor([0, 1]))  # unconditional models refuse labels


def test_params_round_trip():
    p = ModelParams(residual_layers=3, num_classes=2)
    assert ModelParams.from_dict(p.to_dict()) == p
    assert ModelParams.from_dict({**p.to_dict(), "unknown": 1}) == p


def test_the_gate_keeps_its_precision_near_zero_under_bf16_autocast():
    """Under autocast the layer must take tanh: 1 - 2 sigmoid(-2b) in bf16 is off by ~1e-3 near b = 0."""
    from cry_diffusion.model import ResidualLayer

    C = 64
    layer = ResidualLayer(C, dilation=1)
    b = torch.linspace(-0.05, 0.05, C)
    with torch.no_grad():  # conv output = its bias: gate half 0 (sigmoid 0.5), filter half b; skip = identity
        layer.dilated_conv.weight.zero_()
        layer.dilated_conv.bias.copy_(torch.cat([torch.zeros(C), b]))
        layer.output_projection.weight.zero_()
        layer.output_projection.weight[C:, :, 0] = torch.eye(C)
        layer.output_projection.bias.zero_()
    x = torch.zeros(2, C, 8)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        _, skip = layer(x, torch.zeros(2, C, 1))
    exact = 0.5 * torch.tanh(b.double())
    error = (skip.double() - exact[None, :, None]).abs().max()
    assert error < 3e-4, float(error)


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_bf16_autocast_matches_the_plain_reference(device):
    """Under bf16 autocast (the GPU's training and sampling), outputs and gradients stay the textbook layer's."""
    p = ModelParams(residual_layers=5, residual_channels=16, dilation_cycle=3)
    model = randomised(DiffWave(p)).train().to(device)
    ref = ReferenceDiffWave(p).copy_from(model).train().to(device)
    x, t = torch.randn(3, 500, device=device), torch.tensor([3, 60, 190], device=device)
    target = torch.randn(3, 500, device=device)
    outs = []
    for m in (model, ref):
        with torch.autocast(device, dtype=torch.bfloat16):
            out = m(x, t)
        F.mse_loss(out.float(), target).backward()
        outs.append(out.float())
    scale = outs[1].abs().max()
    assert (outs[0] - outs[1]).abs().max() < 0.02 * scale  # bf16 keeps about 3 significant digits
    for i, layer in enumerate(model.layers):
        ours, theirs = layer.dilated_conv.weight.grad, ref.dil[i].weight.grad
        assert (ours - theirs).abs().max() < 0.03 * theirs.abs().max(), i
