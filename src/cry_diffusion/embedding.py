"""The audio embedding the evaluation measures distances in, trained here because none can be downloaded.

No pretrained audio network (VGGish, PANNs) runs offline on torch alone, so, as
unconditional DiffWave's SC09 evaluation did, a small CNN is trained to classify
the real training segments' log-mels by category; its penultimate layer is the
embedding. A dataset with fewer than two categories has no labels to learn from:
it gets the per-band mean and spread of the log-mel instead ("mel statistics").

    from cry_diffusion.embedding import EmbeddingParams, train_embedding, embed
    bundle, info = train_embedding(train_audio, train_labels, EmbeddingParams())
    vectors = embed(bundle, audio)            # [N, dim]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from . import console
from .mel import MelParams, log_mel
from .params import Params
from .runtime import resolve_device


@dataclass(frozen=True)
class EmbeddingParams(Params):
    dim: int = 32  # embedding size: small, so Fréchet covariances of a few dozen clips stay well conditioned
    channels: int = 8  # conv channels of the first block (doubled in the second and third)
    epochs: int = 60  # passes over the training split; ~10 s on a 2-core CPU for the embedded corpus
    batch_size: int = 16  # small sets: several updates per epoch
    learning_rate: float = 3e-3
    seed: int = 0  # weights and batch order: the same data gives the same embedding


class MelCNN(nn.Module):
    """Three conv blocks, global average pooling (any clip length), a dim-wide layer, the class logits.

    GroupNorm, not BatchNorm: no running statistics, so a few hundred training steps
    give the same embedding in training and in evaluation, whatever the batch.
    """

    def __init__(self, n_mels: int, n_classes: int, p: EmbeddingParams):
        super().__init__()
        c = p.channels
        blocks, width = [], 1
        for out in (c, 2 * c, 4 * c):
            blocks += [nn.Conv2d(width, out, 3, padding=1), nn.GroupNorm(1, out), nn.ReLU(), nn.MaxPool2d(2)]
            width = out
        self.features = nn.Sequential(*blocks)
        self.embed = nn.Sequential(nn.Linear(width, p.dim), nn.ReLU())
        self.head = nn.Linear(p.dim, n_classes)

    def embedding(self, mels: torch.Tensor) -> torch.Tensor:
        h = self.features(mels[:, None])
        return self.embed(h.mean(dim=(2, 3)))

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        return self.head(self.embedding(mels))


def _standardise(mels: np.ndarray, mean: float, std: float) -> torch.Tensor:
    return torch.from_numpy(((mels - mean) / std).astype(np.float32))


def train_embedding(audio: np.ndarray | None, labels: list[str] | None, params: EmbeddingParams = EmbeddingParams(),
                    mel_params: MelParams = MelParams(), device="auto", mels: np.ndarray | None = None) -> tuple[dict, dict]:  # fmt: skip
    """Training-split audio [N, samples] and its categories -> (bundle for embed/classify, info).

    mels: the same clips' log-mels under mel_params, when already computed (the pipeline's
    mels.npy); then audio may be None. The bundle holds CPU tensors whatever device
    trained it, so it loads anywhere.
    """
    device = resolve_device(device)
    mels = np.asarray(log_mel(audio, mel_params) if mels is None else mels, np.float32)
    classes = sorted(set(labels or []) - {""})
    base = {"mel_params": mel_params.to_dict(), "params": params.to_dict(), "mean": float(mels.mean()),
            "std": float(mels.std() + 1e-6)}  # fmt: skip
    if len(classes) < 2:
        return base | {"kind": "mel statistics"}, {"kind": "mel statistics", "classes": classes,
                                                  "train_segments": len(mels), "device": "cpu"}
    torch.manual_seed(params.seed)
    labelled = [i for i, c in enumerate(labels) if c]  # uncategorised segments have nothing to teach a classifier
    y = torch.tensor([classes.index(labels[i]) for i in labelled])
    x = _standardise(mels[labelled], base["mean"], base["std"])
    model = MelCNN(mel_params.n_mels, len(classes), params).to(device)  # initialised on the CPU: the same weights anywhere
    opt = torch.optim.Adam(model.parameters(), lr=params.learning_rate)
    order = torch.Generator().manual_seed(params.seed)
    model.train()
    ticker = console.Ticker("training the embedding", params.epochs, unit="epoch")
    for epoch in range(params.epochs):
        for idx in torch.randperm(len(x), generator=order).split(params.batch_size):
            loss = nn.functional.cross_entropy(model(x[idx].to(device)), y[idx].to(device))
            opt.zero_grad()
            loss.backward()
            opt.step()
        ticker(epoch + 1)
    model.eval()
    bundle = base | {"kind": "category classifier", "classes": classes,
                     "model": {k: v.cpu() for k, v in model.state_dict().items()}}
    predicted = classify(bundle, None, device, mels[labelled])
    train_acc = float(np.mean(np.array(predicted) == np.array([labels[i] for i in labelled])))
    return bundle, {"kind": "category classifier", "classes": classes, "train_segments": len(mels),
                    "train_accuracy": train_acc, "device": str(device)}


def _model(bundle: dict, device: torch.device) -> MelCNN:
    model = MelCNN(bundle["mel_params"]["n_mels"], len(bundle["classes"]), EmbeddingParams.from_dict(bundle["params"]))
    model.load_state_dict(bundle["model"])
    return model.to(device).eval()


def bundle_mels(bundle: dict, audio: np.ndarray | None, mels: np.ndarray | None = None) -> np.ndarray:
    """Log-mels of audio under the bundle's mel settings, or `mels` as given when they were computed already."""
    if mels is not None:
        return np.asarray(mels, np.float32)
    return log_mel(np.asarray(audio, np.float32), MelParams.from_dict(bundle["mel_params"]))


def embed(bundle: dict, audio: np.ndarray | None, device="auto", mels: np.ndarray | None = None) -> np.ndarray:
    """Audio [N, samples] (or its log-mels, `mels`) -> embeddings [N, dim] (float64, for the covariance arithmetic)."""
    mels = bundle_mels(bundle, audio, mels)
    if bundle["kind"] == "mel statistics":
        z = (mels - bundle["mean"]) / bundle["std"]
        return np.concatenate([z.mean(-1), z.std(-1)], axis=1).astype(np.float64)
    device = resolve_device(device)
    model = _model(bundle, device)
    with torch.inference_mode():
        x = _standardise(mels, bundle["mean"], bundle["std"]).to(device)
        return model.embedding(x).double().cpu().numpy()


def classify(bundle: dict, audio: np.ndarray | None, device="auto", mels: np.ndarray | None = None) -> list[str] | None:
    """Predicted category per clip (from audio, or its log-mels), or None for an embedding without a classifier."""
    if bundle["kind"] != "category classifier":
        return None
    device = resolve_device(device)
    model = _model(bundle, device)
    with torch.inference_mode():
        x = _standardise(bundle_mels(bundle, audio, mels), bundle["mean"], bundle["std"]).to(device)
        logits = model(x).cpu()
    return [bundle["classes"][k] for k in logits.argmax(1).tolist()]


def probabilities(bundle: dict, embeddings: np.ndarray, device="auto") -> np.ndarray | None:
    """The classifier's category probabilities [N, K] from its own embeddings (the head is one linear layer), or None."""
    if bundle["kind"] != "category classifier":
        return None
    device = resolve_device(device)
    model = _model(bundle, device)
    with torch.inference_mode():
        logits = model.head(torch.as_tensor(np.asarray(embeddings), dtype=torch.float32, device=device))
        return torch.softmax(logits.double(), 1).cpu().numpy()
