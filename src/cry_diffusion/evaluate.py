"""Evaluation of a set of clips against real held-out audio: FAD, features, diversity, memorization.

Every set -- generated at one step count, or a reference (real held-out clips,
Gaussian noise, tone sweeps) -- is scored by the same function against the same
real reference, so the real floor and the noise ceiling sit beside each number.
Here the clips are embedded and searched for copies (cry_diffusion.copies); the distances between embedded
sets are cry_diffusion.distances, the classifier's scores cry_diffusion.classifier_scores.

    from cry_diffusion import evaluate
    from cry_diffusion.distances import EvalParams
    ref = evaluate.Reference.build(bundle, train_audio, heldout_audio, EvalParams(), n_floor=16)
    ref.save("reference.npz")             # the pipeline's `reference` rule, once per dataset
    ref = evaluate.Reference.load("reference.npz")
    scores = evaluate.score(ref, bundle, generated_audio, labels=None)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields

import numpy as np

from . import SAMPLE_RATE, pretrained
from .copies import mel_blocks, mel_copy_threshold, nearest_window
from .atomic import atomic_path
from .classifier_scores import class_scores
from .distances import EvalParams, distances, distinct_fraction, fad, kid, ndb, nearest, pairwise_mean, prdc
from .embedding import bundle_mels, classify, embed, probabilities
from .features import FEATURES, clip_features, level_db, wasserstein
from .mel import MelParams
from .runtime import resolve_device

def at_level(mels: np.ndarray, gain_db: np.ndarray, bundle: dict) -> np.ndarray:
    """Log-mels of the same clips played gain_db [N] louder: a shift of the log magnitude, floored as log_mel floors it."""
    floor = np.log(MelParams.from_dict(bundle["mel_params"]).floor)
    return np.maximum(mels + (np.asarray(gain_db, np.float32) * np.log(10) / 20)[:, None, None], floor).astype(np.float32)


@dataclass
class Reference:
    """The real side of every comparison, built once per dataset.

    "Level-normalised" (_level arrays): each clip brought to target_db, the real reference
    clips' median level (cry_diffusion.features.level_db), before it is embedded. Distances
    between level-normalised sets keep loudness apart from quality (the RMS level feature's
    W1 measures loudness), and the copy search runs there so that a copy at another level
    is still found.
    """

    train: np.ndarray  # embeddings of the training split (k-means bins)
    train_level: np.ndarray  # the same, level-normalised: where the copy search looks
    ref: np.ndarray  # held-out half B: what every set is compared with
    ref_level: np.ndarray  # half B, level-normalised
    ref_features: dict  # features of half B
    floor_audio: np.ndarray  # held-out half A: the real-vs-real floor, scored like any set
    target_db: float  # the level every clip is brought to for the level-normalised distances
    copy_threshold: float  # level-normalised distance to the training split at or below which a clip is a near copy
    real_nearest: np.ndarray  # held-out -> train nearest distances (level-normalised)
    train_mel: np.ndarray  # the training split in the log-mel copy-check space (mel_blocks)
    held_mel: np.ndarray  # the held-out clips (or the training split, when too few) in that space
    held_groups: np.ndarray  # held_mel's recordings, when it is the training split (leave-one-recording-out); else [0]
    mel_copy_threshold: float | None  # copy_threshold's rule in that space, for clips of mel_copy_blocks blocks
    mel_copy_blocks: int | None
    centres: np.ndarray
    real_share: np.ndarray
    ref_probs: np.ndarray  # the classifier's category probabilities of half B; [0, 0] without a classifier
    params: EvalParams
    ref_pretrained: np.ndarray  # half B in the pretrained embedding (cry_diffusion.pretrained); [0, 0] without it
    ref_pretrained_level: np.ndarray  # the same, level-normalised
    ref_labels: list | None  # half B's categories, for per-category distances of conditional models
    device: str  # where the embedding network runs (cry_diffusion.runtime.resolve_device)
    halves_from_train: bool  # fewer than two clips held out: the halves and thresholds come from the training split
    pretrained_copy_threshold: float | None = None  # copy_threshold's rule in the pretrained embedding (level-normalised)
    floor_distinct: dict | None = None  # the real floor's distinct fraction in each embedding (its n: the floor's)

    @classmethod
    def build(cls, bundle: dict, train_audio, heldout_audio, p: EvalParams, device="auto", n_floor: int | None = None,
              train_mels=None, heldout_mels=None, train_labels=None, heldout_labels=None,
              clip_samples: int | None = None, train_recordings=None) -> "Reference":  # fmt: skip
        """The reference for one dataset from its training and held-out clips [N, samples].

        The clips may be arrays or cry_diffusion.segment.Rows over a memory-mapped
        segments.npy, and their log-mels (train_mels, heldout_mels) may come precomputed
        (mels.npy): both are read CHUNK clips at a time. n_floor: keep that many real-floor
        clips, or stop with both counts when half the held-out clips are fewer. train_labels,
        heldout_labels: the clips' categories, for per-category scores of conditional models.
        clip_samples: the length of the clips to be scored, so that the log-mel copy threshold
        (a search over every window of the training split) is worked out here, once.
        train_recordings: the recording each training clip came from; with too few clips held
        out, a clip's copy-threshold search leaves out its whole recording, not only itself.
        """
        from sklearn.cluster import KMeans

        device = str(resolve_device(device))
        from_train = len(heldout_audio) < 2  # too little held out to halve (said in the report)
        if from_train:
            heldout_audio, heldout_mels, heldout_labels = train_audio, train_mels, train_labels
        order = np.random.default_rng(p.seed).permutation(len(heldout_audio))
        half_a, half_b = np.sort(order[: len(order) // 2]), np.sort(order[len(order) // 2 :])
        floor = half_a if n_floor is None else same_n(half_a, n_floor, "the real floor (half the held-out clips)")
        ref_features, target = _features_in_chunks(heldout_audio, half_b)
        train, train_level, train_mel = _embed_in_chunks(bundle, train_audio, train_mels, device, target)
        if from_train:
            held, held_level, held_mel = train, train_level, train_mel
        else:
            held, held_level, held_mel = _embed_in_chunks(bundle, heldout_audio, heldout_mels, device, target)
        ref_pretrained, ref_pretrained_level = _pretrained_in_chunks(heldout_audio, half_b, device, target)
        # from the training split, each clip is left out of its own search (else it finds itself at distance 0),
        # and so is the rest of its recording: a neighbouring segment of the same cry is no measure of a copy
        groups = np.arange(len(train)) if train_recordings is None else np.unique(np.asarray(train_recordings),
                                                                                     return_inverse=True)[1]
        real_nearest = nearest(held_level, train_level, leave_one_out=groups if from_train else False)[0]
        recordings = (groups[half_b], groups) if from_train else None
        pretrained_threshold = _pretrained_threshold(ref_pretrained_level, train_audio, recordings, device, target, p)
        copy_threshold = float(np.percentile(real_nearest, p.copy_percentile))
        blocks = None if clip_samples is None else mel_blocks(np.zeros((1, clip_samples), np.float32), bundle).shape[-1]
        held_groups = groups if from_train else np.zeros(0, int)
        mel_threshold = None if blocks is None else mel_copy_threshold(held_mel, train_mel, blocks, held_groups, p)
        k = max(1, min(p.ndb_bins, len(train) // 5))
        km = KMeans(k, n_init=4, random_state=p.seed).fit(train)
        probs = probabilities(bundle, held[half_b], device)
        ref = cls(train, train_level, held[half_b], held_level[half_b], ref_features,
                  np.asarray(heldout_audio[floor], np.float32), target, copy_threshold, real_nearest, train_mel, held_mel,
                  held_groups, mel_threshold, blocks, km.cluster_centers_, np.bincount(km.labels_, minlength=k) / len(train),
                  np.zeros((0, 0)) if probs is None else probs, p, ref_pretrained, ref_pretrained_level,
                  None if heldout_labels is None else [str(heldout_labels[i]) for i in half_b], device, from_train,
                  pretrained_threshold)  # fmt: skip
        ref.floor_distinct = ref._floor_distinct(bundle)
        return ref

    def _floor_distinct(self, bundle: dict) -> dict:
        """The real floor's distinct fraction in each embedding, which every set of its n is read beside."""
        audio, p = self.floor_audio, self.params
        mels = at_level(bundle_mels(bundle, audio), self.target_db - level_db(audio), bundle)
        level = embed(bundle, None, self.device, mels=mels)
        found = {"in_domain": distinct_fraction(level, self.ref_level, self.copy_threshold, p)}
        if self.ref_pretrained.size:
            found["pretrained"] = distinct_fraction(_pretrained_pair(audio, self.target_db, self.device)[1],
                                                    self.ref_pretrained_level, self.pretrained_copy_threshold, p)
        return {space: {k: d[k] for k in ("value", "low", "high", "n")} for space, d in found.items()}

    _ARRAYS = ("train", "train_level", "ref", "ref_level", "floor_audio", "real_nearest", "train_mel", "held_mel",
               "held_groups", "centres", "real_share", "ref_probs", "ref_pretrained", "ref_pretrained_level")

    def save(self, path) -> None:
        """One .npz, no pickles: the arrays as they are, the rest as JSON. Written atomically."""
        meta = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in self._ARRAYS}
        meta["params"] = self.params.to_dict()
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, meta=np.array(json.dumps(meta)), **{k: getattr(self, k) for k in self._ARRAYS})

    @classmethod
    def load(cls, path, device=None) -> "Reference":
        """A saved reference; device: where its user runs the embedding ("auto" resolves here; None: as saved)."""
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            arrays = {k: z[k] for k in cls._ARRAYS}
        meta["params"] = EvalParams.from_dict(meta["params"])
        if device is not None:
            meta["device"] = str(resolve_device(device))
        return cls(**arrays, **meta)


CHUNK = 256  # clips per pass when building a reference: memory holds one chunk's log-mels, whatever the corpus
def _features_in_chunks(audio, rows: np.ndarray) -> tuple[dict, float]:
    """(clip_features of audio[rows], their median level: the level-normalised sets' target_db), CHUNK at a time."""
    features, levels = {}, []
    for part in np.array_split(rows, max(1, -(-len(rows) // CHUNK))):
        clips = np.asarray(audio[part], np.float32)
        levels.extend(level_db(clips))
        for name, values in clip_features(clips).items():
            features.setdefault(name, []).extend(values)
    return features, float(np.median(levels))


def _pretrained_threshold(ref_level: np.ndarray, train_audio, recordings, device: str, target_db: float,
                          p: EvalParams) -> float | None:  # fmt: skip
    """copy_threshold's rule in the pretrained embedding, from half B's near-duplicates in the training split.

    ref_level: half B there, level-normalised ([0, 0]: not installed, and None returned). recordings: (half B's,
    the training split's), when the halves come from the training split: a pair from one recording is no copy.
    """
    if not ref_level.size:
        return None
    d = distances(ref_level, _pretrained_in_chunks(train_audio, np.arange(len(train_audio)), device, target_db)[1])
    if recordings is not None:
        d[recordings[0][:, None] == recordings[1][None, :]] = np.inf
    return float(np.percentile(d.min(1), p.copy_percentile))


def _embed_in_chunks(bundle: dict, audio, mels, device: str, target_db: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(embeddings, level-normalised embeddings, copy-check log-mel blocks) of every clip, CHUNK clips at a time.

    Log-mels are computed (or read) once per clip; the level-normalised ones are the same shifted.
    """
    vectors, levelled, blocks = [], [], []
    for i in range(0, len(audio), CHUNK):
        clips = np.asarray(audio[i:i + CHUNK], np.float32)
        chunk_mels = bundle_mels(bundle, clips if mels is None else None, mels=None if mels is None else mels[i:i + CHUNK])
        vectors.append(embed(bundle, None, device, mels=chunk_mels))
        levelled.append(embed(bundle, None, device, mels=at_level(chunk_mels, target_db - level_db(clips), bundle)))
        blocks.append(mel_blocks(None, bundle, mels=chunk_mels))
    return np.concatenate(vectors), np.concatenate(levelled), np.concatenate(blocks)


def _pretrained_in_chunks(audio, rows: np.ndarray, device: str, target_db: float) -> tuple[np.ndarray, np.ndarray]:
    """The pretrained embedding of audio[rows], as recorded and level-normalised ([0, 0] each when it isn't installed)."""
    if not pretrained.available():
        return np.zeros((0, 0)), np.zeros((0, 0))
    raw, levelled = [], []
    for part in np.array_split(rows, max(1, -(-len(rows) // CHUNK))):
        e, e_level = _pretrained_pair(np.asarray(audio[part], np.float32), target_db, device)
        raw.append(e)
        levelled.append(e_level)
    return np.concatenate(raw), np.concatenate(levelled)


def to_level(audio: np.ndarray, target_db: float) -> np.ndarray:
    """Each clip scaled to target_db (features.level_db); not clipped: it is only embedded, never played."""
    return (audio * 10 ** ((target_db - level_db(audio)) / 20)[:, None]).astype(np.float32)


def _distances(e: np.ndarray, ref: np.ndarray, p: EvalParams) -> dict:
    """FAD, KID, precision, recall, density and coverage of one embedded set against one embedded reference."""
    return {"fad": fad(e, ref, p), "kid": kid(e, ref, p)} | prdc(e, ref, p)


def embedding_scores(r: Reference, bundle: dict, audio: np.ndarray, mels: np.ndarray | None = None) -> dict:
    """FAD, KID, PRDC (as recorded and level-normalised, in both embeddings) and the distinct fraction of one set.

    With the set's embeddings under "_e" and "_e_level" (score keeps what it needs of them).
    """
    mels = bundle_mels(bundle, audio) if mels is None else mels
    e = embed(bundle, None, r.device, mels=mels)
    e_level = embed(bundle, None, r.device, mels=at_level(mels, r.target_db - level_db(audio), bundle))
    pretrained_scores, pretrained_level = _pretrained_scores(r, audio)
    return {
        **_distances(e, r.ref, r.params),
        "level_normalised": _distances(e_level, r.ref_level, r.params) | {"target_db": r.target_db},
        "pretrained": pretrained_scores,
        # near-duplicates within the set, in each embedding, level-normalised (a collapse at any n)
        "distinct_fraction": {space: d and d | {"floor": (r.floor_distinct or {}).get(space)} for space, d in {
            "in_domain": distinct_fraction(e_level, r.ref_level, r.copy_threshold, r.params),
            "pretrained": None if pretrained_level is None else
            distinct_fraction(pretrained_level, r.ref_pretrained_level, r.pretrained_copy_threshold, r.params)}.items()},
        "_e": e, "_e_level": e_level,
    }  # fmt: skip


def score(r: Reference, bundle: dict, audio: np.ndarray, labels: list[str] | None = None) -> dict:
    """Every metric of one set of clips [N, samples] against the reference; labels: the intended categories."""
    mels = bundle_mels(bundle, audio)  # once, for the embedding, the classifier and the copy check
    scores = embedding_scores(r, bundle, audio, mels)
    e, e_level = scores.pop("_e"), scores.pop("_e_level")
    feats = clip_features(audio)
    dist, idx = nearest(e_level, r.train_level)
    blocks = mel_blocks(None, bundle, mels=mels)
    mel_dist, mel_idx = nearest_window(blocks, r.train_mel)
    mel_threshold = r.mel_copy_threshold
    if r.mel_copy_blocks != blocks.shape[-1]:  # clips of another length than the reference was built for
        mel_threshold = mel_copy_threshold(r.held_mel, r.train_mel, blocks.shape[-1], r.held_groups, r.params)
    predicted = classify(bundle, None, r.device, mels=mels) if labels else None
    probs = probabilities(bundle, e, r.device)
    return {
        "n": len(audio),
        "n_ref": len(r.ref),
        "device": r.device,
        "halves_from_train": r.halves_from_train,
        **scores,
        "classifier": class_scores(probs, r.ref_probs, list(bundle["classes"]), r.params)
        if probs is not None and r.ref_probs.size and probs.shape[1] >= 2 else None,
        "wasserstein": {name: wasserstein(feats[name], r.ref_features[name]) for name in FEATURES},
        "features": feats,
        "ndb": ndb(r.centres, r.real_share, len(r.train), e, r.params.ndb_alpha),
        "pairwise": pairwise_mean(e),
        "pairwise_real": pairwise_mean(r.ref),
        "nearest_train": {"distance": dist.tolist(), "index": idx.tolist(), "threshold": r.copy_threshold,
                          "real_median": float(np.median(r.real_nearest)), "median": float(np.median(dist)),
                          "near_copies": int((dist <= r.copy_threshold).sum())},  # fmt: skip
        "nearest_train_mel": {"distance": mel_dist.tolist(), "index": mel_idx.tolist(), "threshold": mel_threshold,
                              "near_copies": int((mel_dist <= mel_threshold).sum())},  # fmt: skip
        "accuracy": float(np.mean(np.array(predicted) == np.array(labels))) if predicted else None,
        "per_category": _per_category(r, feats, labels, predicted),
        # kept so that sets can be compared with each other afterwards (cry_diffusion.tradeoff)
        "embeddings": e.tolist(),
        "embeddings_level": e_level.tolist(),
    }


def at_path(scores: dict, path: str):
    """scores["a"]["b"] for "a.b"; None where any step is missing."""
    for key in path.split("."):
        scores = scores.get(key) if isinstance(scores, dict) else None
    return scores


def _per_category(r: Reference, feats: dict, labels: list[str] | None, predicted: list[str] | None) -> dict | None:
    """For a set generated by category: per category, the classifier's accuracy and each feature's W1 to real clips of it."""
    if not labels or r.ref_labels is None:
        return None
    out = {}
    for category in sorted(set(labels)):
        mine = [i for i, x in enumerate(labels) if x == category]
        real = [i for i, x in enumerate(r.ref_labels) if x == category]
        out[category] = {
            "n": len(mine), "n_ref": len(real),
            "accuracy": float(np.mean([predicted[i] == category for i in mine])) if predicted else None,
            "wasserstein": {name: wasserstein([feats[name][i] for i in mine], [r.ref_features[name][i] for i in real])
                            if real else None for name in FEATURES},
        }  # fmt: skip
    return out


def _pretrained_scores(r: Reference, audio: np.ndarray) -> tuple[dict | None, np.ndarray | None]:
    """The distances in the pretrained embedding, as recorded and level-normalised: a ruler that never saw this dataset.

    With the level-normalised embeddings themselves (None, None without the embedding).
    """
    if not r.ref_pretrained.size:
        return None, None
    e, e_level = _pretrained_pair(audio, r.target_db, r.device)
    return _distances(e, r.ref_pretrained, r.params) | {
        "level_normalised": _distances(e_level, r.ref_pretrained_level, r.params)} | {
        k: v for k, v in pretrained.describe().items() if k in ("name", "trained_on", "dim")}, e_level


def _pretrained_pair(audio: np.ndarray, target_db: float, device: str) -> tuple[np.ndarray, np.ndarray]:
    """Clips in the pretrained embedding, as recorded and brought to target_db."""
    return pretrained.embed(audio, device), pretrained.embed(to_level(np.asarray(audio, np.float32), target_db), device)


def same_n(audio: np.ndarray, n: int, what: str) -> np.ndarray:
    """The first n clips, or an error naming both counts: FAD's bias depends on n, so sets are compared at one n."""
    if len(audio) < n:
        raise ValueError(f"{what} has {len(audio)} clips, fewer than the {n} every other set is scored on "
                         f"(sampling.n_samples): lower sampling.n_samples to {len(audio)}, or hold out more "
                         f"audio (heldout_fraction)")
    return audio[:n]


def noise_like(real: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Gaussian noise as long as a real clip and as loud as the real clips on average."""
    rms = float(np.sqrt(np.mean(np.square(real, dtype=np.float64))))
    x = np.random.default_rng(seed).standard_normal((n, real.shape[1])) * rms
    return np.clip(x, -1, 1).astype(np.float32)


def tone_sweeps(real: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """A second kind of sound: linear sine sweeps between random pitches in 200-2000 Hz, at the real RMS."""
    rng = np.random.default_rng(seed)
    rms = float(np.sqrt(np.mean(np.square(real, dtype=np.float64))))
    t = np.arange(real.shape[1]) / SAMPLE_RATE
    start, end = rng.uniform(200, 2000, (2, n, 1))
    phase = 2 * np.pi * (start * t + (end - start) * t**2 / (2 * max(t[-1], 1e-9)))
    return (np.sqrt(2) * rms * np.sin(phase)).astype(np.float32)
