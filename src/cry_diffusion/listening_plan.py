"""A listening study's plan: who hears which stimulus, in which order, and the key that says what each one is.

plan.json (written by cry_diffusion.listening_build) is the key. A rater slot's trials follow from it
alone, so the builder, the answers' store and the analysis agree on every rater's trials:

    from cry_diffusion import listening_plan
    plan = listening_plan.load_plan("results/listening/embedded")
    trials = listening_plan.slot_trials(plan, 25)           # any slot's trials, planned or drawn later
    page = [listening_plan.public_trial(t, plan) for t in trials]   # what a rater's page may see
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .params import Params

KINDS = ("afc", "mos", "category")  # two-alternative forced choice, naturalness 1-5, which kind of cry
MOS_SCALE = {1: "bad", 2: "poor", 3: "fair", 4: "good", 5: "excellent"}  # ITU-T P.800's absolute category rating
ANCHORS = ("noise", "tones")  # the pipeline's two baselines (cry_diffusion.evaluate.noise_like, tone_sweeps)


@dataclass(frozen=True)
class StudyParams(Params):
    """What the study holds (the `listening` config section). The exclusion rule is part of the plan,
    so it is fixed before the first answer: changing it afterwards is refused (plan_mismatch)."""

    kinds: tuple = KINDS  # which trial kinds to run; "category" runs only on data with two or more categories
    raters: int = 20  # rater slots planned in advance, each with its own order
    clips: int = 8  # clips of each system (step count, real, each anchor)
    afc_per_system: int = 2  # real-vs-generated pairs per step count, per rater
    mos_per_system: int = 2  # clips rated per step count (and real), per rater; one tone sweep among them
    category_trials: int = 5  # "which kind of cry?" trials per rater
    attention_checks: int = 1  # per kind: noise against real in the 2AFC, noise rated in the MOS
    mos_noise_max: int = 2  # a noise clip rated above this fails the MOS attention check
    exclude_failed_checks: int = 1  # a rater failing this many attention checks (or more) is excluded
    exclude_min_completed: float = 0.5  # a rater who answered less than this share of their trials is excluded
    loudness_match: bool = True  # every stimulus to loudness_lufs (ITU-R BS.1770 K-weighted, gated)
    loudness_lufs: float = -26.0
    seed: int = 0


class StudyError(ValueError):
    """A study that can't be built or opened as asked; the message names the folder and what to do."""


def new_token() -> str:
    """A rater's token: 64 bits from the operating system's cryptographic source."""
    return secrets.token_hex(8)


def plan_id(plan: dict) -> str:
    body = {k: v for k, v in plan.items() if k != "plan_id"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def slot_trials(plan: dict, r: int) -> list[dict]:
    """Rater slot r's trials, kind by kind, each block in the slot's own order: from the plan alone, for any r, so that
    slots drawn after the plan (listening_store.Store.claim) are counterbalanced as the planned ones are.

    Balanced: every rater gets the same number of trials of each system; clip i of a system goes to
    slot r in rotation (r * count + j), so over raters every clip is heard equally often; the real clip
    of a 2AFC pair sits left in half of each rater's pairs of a system, and over each two slots when that
    count is odd; with one pair a system, in half of each rater's systems. Which half, and the order, come
    from the plan's secret order_key, not the seed.
    """
    p = StudyParams.from_dict(plan["params"])
    kinds, systems, categories = plan["kinds"], plan["systems"], plan["categories"]
    names, truth, count = {}, {}, {}
    for name, info in plan["stimuli"].items():
        names[info["system"], info["clip"]] = name
        truth[info["system"], info["clip"]] = info["category"]
        count[info["system"]] = count.get(info["system"], 0) + 1
    key = plan.get("order_key", p.seed)  # a plan from before the secret key: its seed, as it was built
    order = np.random.default_rng([key, r])
    # which systems' pairs put the real clip left: half of them (a random half, shared by two slots, which the slots'
    # parity then mirrors), so that each rater hears it on both sides, not on one side by chance
    shared = np.random.default_rng([key, r // 2, 1])
    flips = (shared.permutation(np.arange(len(systems) + 1) % 2) + shared.integers(0, 2)) % 2
    blocks = []
    if "afc" in kinds:
        block, j_all = [], 0
        for s, system in enumerate(systems + ["noise"] * (p.attention_checks > 0)):
            n = p.attention_checks if system == "noise" else p.afc_per_system
            for j in range(n):
                other = (r * n + j) % count[system]
                real = (r * p.afc_per_system * len(systems) + j_all) % count["real"]
                j_all += 1
                pair = [names["real", real], names[system, other]]
                if (r + j + flips[s]) % 2:
                    pair.reverse()
                block.append({"kind": "afc", "stimuli": pair, "system": system, "attention": system == "noise"})
        blocks.append(block)
    if "mos" in kinds:
        block = []
        for system in systems + ["real", "tones", "noise"]:
            n = {"tones": 1, "noise": p.attention_checks}.get(system, p.mos_per_system)
            for j in range(n):
                clip = (r * n + j) % count[system]
                block.append({"kind": "mos", "stimuli": [names[system, clip]], "system": system, "attention": system == "noise"})
        blocks.append(block)
    if "category" in kinds:
        pool = [(system, i) for system in ["real"] + systems for i in range(count[system]) if truth[system, i] in categories]
        block = []
        for j in range(min(p.category_trials, len(pool))):
            system, i = pool[(r * p.category_trials + j) % len(pool)]
            block.append({"kind": "category", "stimuli": [names[system, i]], "system": system, "attention": False,
                          "truth": truth[system, i]})  # fmt: skip
        blocks.append(block)
    trials = []
    for block in blocks:
        trials.extend(block[i] for i in order.permutation(len(block)))
    return [{"id": f"t{n:03d}", **t} for n, t in enumerate(trials, 1)]


def public_trial(trial: dict, plan: dict) -> dict:
    """A trial as the page sees it: no system, no truth, nothing that gives the answer."""
    options = {"afc": trial["stimuli"], "mos": [str(k) for k in MOS_SCALE], "category": plan["categories"]}[trial["kind"]]
    return {"id": trial["id"], "kind": trial["kind"], "stimuli": trial["stimuli"], "options": options}


def load_plan(folder: str | Path) -> dict:
    path = Path(folder) / "plan.json"
    if not path.is_file():
        raise StudyError(f"{folder}: no plan.json: not a listening study (build one with the `listening` rule)")
    return json.loads(path.read_text())
