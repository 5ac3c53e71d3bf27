"""A category the generator never saw (cry_diffusion.withheld): how near its clips come to the category's real cries.

Three sets are set beside a withheld category's held-out real clips, in the evaluation's in-domain
embedding with every clip brought to the real clips' level (as its verdicts read it): the full
generator's clips of the category (the ceiling), the clips of the generator that never saw it,
and the real clips of the nearest other category (the floor for "a cry, but not this one").
Recall and coverage of the real clips by each (cry_diffusion.distances.prdc), and where the
utility stage's classifier puts each set's clips.

    from cry_diffusion import unseen
    result = unseen.measure("pain", held_by_category, full_pain_clips, withheld_clips, bundle, target_db, predict, EvalParams())
"""

from __future__ import annotations

import numpy as np

from .distances import prdc


def nearest_category(held: dict[str, np.ndarray], category: str) -> str:
    """The other category whose held-out clips' mean embedding lies nearest `category`'s: "a cry, but not this one"."""
    centre = held[category].mean(0)
    others = {c: float(np.linalg.norm(e.mean(0) - centre)) for c, e in held.items() if c != category and len(e)}
    return min(others, key=others.get)


def nearness(category: str, reference: np.ndarray, sets: dict[str, np.ndarray], assigned: dict[str, list],
           classes: list[str], eval_params) -> dict:  # fmt: skip
    """How near each set comes to a withheld category's held-out real clips (embeddings `reference`).

    Three sets are compared with those real clips, by recall and coverage in the evaluation's
    embedding: the full generator's clips of the category (the ceiling), the clips of the generator
    that never saw it, and the real clips of the nearest other category, the floor for "a cry, but
    not this one". sets: name -> embeddings of that set (the full generator asked for the category, the generator
    that never saw it, the nearest other category's real clips); recall and coverage of the real
    clips by each (cry_diffusion.distances.prdc). assigned: name -> the classifier's category for each
    of the set's clips: where it puts them, as shares.
    """
    out = {"category": category, "n_ref": int(len(reference)), "sets": {}}
    for name, e in sets.items():
        found = prdc(e, reference, eval_params)
        labels = np.asarray(assigned.get(name, []), str)
        out["sets"][name] = {"n": int(len(e)), "recall": found["recall"], "coverage": found["coverage"],
                             "assigned": {c: float(np.mean(labels == c)) if len(labels) else None for c in classes}}  # fmt: skip
    return out



def levelled(bundle: dict, audio: np.ndarray, target_db: float, device="cpu") -> np.ndarray:
    """The evaluation's in-domain embedding of clips brought to the real clips' level (as its verdicts read it)."""
    from .embedding import bundle_mels, embed
    from .evaluate import at_level
    from .features import level_db

    mels = bundle_mels(bundle, audio)
    return embed(bundle, None, device, mels=at_level(mels, target_db - level_db(audio), bundle))



def measure(category: str, held: dict[str, np.ndarray], full: np.ndarray, without: np.ndarray, bundle: dict,
            target_db: float, predict, eval_params, device="cpu") -> dict:  # fmt: skip
    """`nearness` of one withheld category, from audio: held (category -> its held-out real clips), full (the full
    generator's clips of it), without (the clips of the generator that never saw it); predict(audio) -> categories."""
    held = {c: a for c, a in held.items() if len(a)}
    embedded = {c: levelled(bundle, a, target_db, device) for c, a in held.items()}
    other = nearest_category(embedded, category)
    n = len(held[category])
    sets = {"full generator, asked for it": full[:n], "generator that never saw it": without[:n],
            f"real clips of {other} (nearest other category)": held[other][:n]}  # fmt: skip
    out = nearness(category, embedded[category], {k: levelled(bundle, a, target_db, device) for k, a in sets.items()},
                   {k: predict(a) for k, a in sets.items()}, sorted(held), eval_params)
    return out | {"nearest_other": other}
