"""cry_diffusion.runtime: big tensors come from malloc's heap (reusable) instead of fresh kernel mappings.

Read from glibc's own accounting (mallinfo2), not timed; benchmarks/sampling.py times the effect.

    pytest tests/test_runtime.py
"""

import subprocess
import sys

import pytest

MAPPED_BYTES = """
import ctypes, sys, torch
if sys.argv[1] == "reuse":
    from cry_diffusion.runtime import reuse_freed_memory
    assert reuse_freed_memory() and reuse_freed_memory()  # idempotent
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
x = torch.empty(64 << 20, dtype=torch.uint8).fill_(1)  # 64 MB: above glibc's largest mmap threshold
print(libc.mallinfo2().hblkhd)  # bytes held in separately mapped blocks
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_big_allocations_come_from_the_heap():
    mapped = {mode: int(subprocess.run([sys.executable, "-c", MAPPED_BYTES, mode], capture_output=True, text=True,
                                       check=True).stdout) for mode in ("default", "reuse")}  # fmt: skip
    assert mapped["default"] >= 64 << 20  # glibc's default: its own mapping, unmapped again on free
    assert mapped["reuse"] < 64 << 20  # from the heap, where the next op can reuse it


class Moved(Exception):
    """Raised in place of moving a network to a device: the test only needs to know which device."""


@pytest.fixture
def fake_gpu(monkeypatch):
    """torch believes a GPU is there; every network's .to(device) records the device and stops the stage."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)
    flags = [(torch.backends.cudnn, "benchmark"), (torch.backends.cudnn, "allow_tf32"),
             (torch.backends.cuda.matmul, "allow_tf32")]
    saved = [getattr(obj, name) for obj, name in flags]
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    real_to = torch.nn.Module.to

    def to(module, *args, **kwargs):
        device = torch.device(args[0] if args else kwargs["device"])
        if device.type == "cuda":
            raise Moved(device)
        return real_to(module, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "to", to)
    yield
    for (obj, name), value in zip(flags, saved):  # runtime.prepare set the GPU's flags: put them back
        setattr(obj, name, value)


def stage_device(fn, *args, **kwargs):
    with pytest.raises(Moved) as moved:
        fn(*args, **kwargs)
    return moved.value.args[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model file and embedding bundle, made on the CPU before any test pretends a GPU is there."""
    import numpy as np

    from cry_diffusion import train
    from cry_diffusion.diffusion import DiffusionParams
    from cry_diffusion.embedding import EmbeddingParams, train_embedding
    from cry_diffusion.model import ModelParams

    folder = tmp_path_factory.mktemp("trained")
    audio = (0.1 * np.random.default_rng(0).standard_normal((8, 1600))).astype(np.float32)
    tiny = ModelParams(residual_layers=2, residual_channels=4)
    tp = train.TrainParams(steps=2, batch_size=2, crop_samples=800, checkpoint_every=2, log_every=1)
    train.train(audio, None, tiny, DiffusionParams(), tp, folder / "model.pt", folder / "ck", folder / "loss.csv",
                device="cpu")
    bundle, _ = train_embedding(audio, ["a", "b"] * 4, EmbeddingParams(epochs=1, dim=4, channels=2), device="cpu")
    return {"audio": audio, "model_params": tiny, "train_params": tp, "model_file": folder / "model.pt",
            "bundle": bundle}


def test_auto_is_one_device_for_every_stage(tmp_path, trained, fake_gpu):
    """train, sample, embedding and evaluate all resolve "auto" through one function: the same GPU for all."""
    import torch

    from cry_diffusion import distances, evaluate, generate, train
    from cry_diffusion.diffusion import DiffusionParams
    from cry_diffusion.embedding import EmbeddingParams, train_embedding

    audio, tiny, tp, model_file, bundle = (trained[k] for k in ("audio", "model_params", "train_params",
                                                                "model_file", "bundle"))
    devices = {
        "train": stage_device(train.train, audio, None, tiny, DiffusionParams(), tp, tmp_path / "m2.pt",
                              tmp_path / "ck2", tmp_path / "loss2.csv", device="auto"),
        "sample": stage_device(generate.generate, model_file, n=1, seconds=0.05, steps=6, device="auto"),
        "embedding": stage_device(train_embedding, audio, ["a", "b"] * 4, EmbeddingParams(epochs=1), device="auto"),
        "evaluate": stage_device(evaluate.Reference.build, bundle, audio, audio, distances.EvalParams(), device="auto"),
    }
    assert set(devices.values()) == {torch.device("cuda", 0)}, devices


def test_resolve_device_and_precision(monkeypatch):
    import torch

    from cry_diffusion.runtime import amp_dtype, resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == resolve_device(None) == torch.device("cpu")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)  # an explicit device is taken as given
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("LOCAL_RANK", "3")  # torchrun: each process its own card
    assert resolve_device("auto") == torch.device("cuda", 3)
    assert amp_dtype("auto", torch.device("cpu")) is None
    assert amp_dtype("bf16", torch.device("cpu")) is torch.bfloat16
    with pytest.raises(ValueError, match="precision"):
        amp_dtype("fp8", torch.device("cpu"))


def test_sampling_falls_back_to_eager_when_a_graph_cannot_be_recorded(trained, monkeypatch):
    """A failed capture under graph "auto" costs speed, not the samples: same audio as eager, and info says why."""
    import numpy as np

    from cry_diffusion import diffusion, generate

    eager, _ = generate.generate(trained["model_file"], n=2, seconds=0.05, steps=6, device="cpu", graph="off")

    class Unrecordable:
        def __init__(self, *args, **kwargs):
            raise RuntimeError("CUDA error: operation not permitted when stream is capturing")

    monkeypatch.setattr(diffusion, "Replay", Unrecordable)
    monkeypatch.setattr(generate, "uses_cuda_graphs", lambda graph, device: True)  # as on a GPU
    audio, info = generate.generate(trained["model_file"], n=2, seconds=0.05, steps=6, device="cpu", graph="auto")
    np.testing.assert_array_equal(audio, eager)
    assert info["cuda_graph"] is False and "not permitted" in info["cuda_graph_error"]
    with pytest.raises(RuntimeError, match="not permitted"):  # asked for by name: no quiet fallback
        generate.generate(trained["model_file"], n=2, seconds=0.05, steps=6, device="cpu", graph="on")


def test_sampling_does_not_import_the_training_loop():
    """generate once imported amp_dtype from train, so any training change reran sampling, evaluation and the report."""
    code = "import sys, cry_diffusion.generate; print(any(m in sys.modules for m in ('cry_diffusion.train', 'cry_diffusion.loop')))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
