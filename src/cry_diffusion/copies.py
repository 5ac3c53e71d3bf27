"""Near copies of training clips: each clip's log-mel blocks against every window of the training split's.

A clip closer to some stretch of a training segment than real held-out clips are (mel_copy_threshold)
is a near copy: cry_diffusion.evaluate counts them for every set it scores, the real floor included.
The space is the log-mel, not the embedding the distances use, so that the copy check sees what the
classifier never learnt to ignore.

    from cry_diffusion import copies
    blocks = copies.mel_blocks(audio, bundle)          # [N, n_mels, blocks]
    distance, index = copies.nearest_window(blocks, train_blocks)
"""

from __future__ import annotations

import numpy as np

from .distances import EvalParams
from .embedding import bundle_mels

MEL_POOL = 4  # log-mel frames averaged into one block for the copy check (40 ms at a 10 ms hop)
MEL_RANGE_DB = 25  # each clip's log-mel clamped to this far below its loudest cell (why: mel_blocks)


def mel_blocks(audio: np.ndarray | None, bundle: dict, mels: np.ndarray | None = None) -> np.ndarray:
    """Clips -> log-mels in a space the classifier never saw, for the copy check: [N, n_mels, blocks] float32.

    Each clip's log-mel is clamped to MEL_RANGE_DB below its own peak (so the floor moves
    with the clip's level), then averaged over MEL_POOL frames: a copy with noise
    added at 30 dB SNR otherwise differs most in its quiet gaps, where the log of
    near-silence swings widely (measured on synthetic cries: near copies sat above the
    threshold with no clamp, and at a quarter of it with 25 dB).
    """
    mels = bundle_mels(bundle, audio, mels)
    mels = np.maximum(mels, mels.max(axis=(1, 2), keepdims=True) - MEL_RANGE_DB * np.log(10) / 20)  # magnitudes: dB/20
    blocks = max(1, mels.shape[-1] // MEL_POOL)
    return mels[..., : blocks * MEL_POOL].reshape(*mels.shape[:2], blocks, -1).mean(-1).astype(np.float32)


def nearest_window(query: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each query clip [n_mels, b]: the RMS log-mel difference to, and index of, the closest same-length window
    of any reference clip [n_mels, B] (every offset). A query longer than the references is cut to their length.

    Training draws random crops, so a memorised clip can be any stretch of a training
    segment: whole-clip distances would miss it. RMS per cell keeps lengths comparable. The
    difference's mean over the cells is taken out (a gain is a constant shift of a log-mel),
    so a copy played louder or quieter is as close as the copy itself: with it left in, exact
    copies at -3.5 to -12 dB were missed every time.
    """
    from numpy.lib.stride_tricks import sliding_window_view

    b = min(query.shape[-1], ref.shape[-1])
    q = query[..., :b].astype(np.float64)
    windows = sliding_window_view(ref, b, axis=-1)  # [N, n_mels, offsets, b], a view
    best, index = np.full(len(q), np.inf), np.zeros(len(q), int)
    for i in range(len(ref)):  # one reference clip at a time: memory stays at one clip's windows
        w = windows[i].astype(np.float64)
        dot = np.einsum("qmb,mob->qo", q, w)
        sq = (q**2).sum((1, 2))[:, None] + (w**2).sum((0, 2))[None, :] - 2 * dot
        offset = (q.sum((1, 2))[:, None] - w.sum((0, 2))[None, :]) / q[0].size  # the mean difference: a gain
        d = np.sqrt(np.clip(sq / q[0].size - offset**2, 0, None).min(1))
        closer = d < best
        best[closer], index[closer] = d[closer], i
    return best, index


THRESHOLD_CLIPS = 128  # held-out clips the log-mel copy threshold is drawn from: each searches the whole training split



def mel_copy_threshold(held_mel: np.ndarray, train_mel: np.ndarray, blocks: int, groups: np.ndarray, p: EvalParams) -> float:
    """copy_percentile of held-out clips' distances (cut to `blocks`) to every window of the training split.

    groups: when held_mel is the training split itself, each row's recording: a row's search
    skips every clip of its own recording. Empty: held_mel is held out, nothing to skip.
    """
    rows = np.arange(len(held_mel))
    if len(rows) > THRESHOLD_CLIPS:
        rows = np.sort(np.random.default_rng(p.seed).choice(rows, THRESHOLD_CLIPS, replace=False))
    if len(groups):
        dist = []
        for i in rows:
            others = train_mel[groups != groups[i]]
            dist.append(nearest_window(held_mel[[i], :, :blocks], others)[0][0] if len(others) else np.inf)
        dist = np.array(dist)
    else:
        dist = nearest_window(held_mel[rows][..., :blocks], train_mel)[0]
    return float(np.percentile(dist, p.copy_percentile))
