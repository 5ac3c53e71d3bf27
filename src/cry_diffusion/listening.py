"""A blind listening test: can people tell the generated cries from real ones?

A study is one folder (the pipeline's `listening` rule writes results/listening/NAME/):

    index.html     the test; from the server it loads each trial over /api, from a file it reads trials.js
    trials.js      every rater's trials without the key, for the page opened as a file (no server)
    plan.json      the key: which stimulus is what, each rater's trials in order, the exclusion rule.
                   Never served, never shared.
    stimuli/       every clip under an opaque random name, loudness-matched
    answers.sqlite one row per answer (SQLite, WAL), made by the server or by `import`

    python -m cry_diffusion.listening serve results/listening/embedded      # prints the URL to share
    python -m cry_diffusion.listening import results/listening/embedded listening-*.json

The library side:

    from cry_diffusion import listening
    listening.build(folder, real, real_categories, {"steps-200": (audio, labels)}, StudyParams(), "embedded")
    store = listening.Store(folder)          # the database, checked against the plan
    store.add(payload)                       # the server's and the importer's one way in
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import re
import secrets
import sqlite3
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np

from . import SAMPLE_RATE
from .atomic import write_text
from .params import Params

KINDS = ("afc", "mos", "category")  # two-alternative forced choice, naturalness 1-5, which kind of cry
MOS_SCALE = {1: "bad", 2: "poor", 3: "fair", 4: "good", 5: "excellent"}  # ITU-T P.800's absolute category rating
ANCHORS = ("noise", "tones")  # the pipeline's two baselines (cry_diffusion.evaluate.noise_like, tone_sweeps)
DATABASE = "answers.sqlite"
MAX_BODY = 4096  # bytes: an answer is a few hundred; anything larger is refused unread
STIMULUS = re.compile(r"[0-9a-f]{16}\.wav")  # the only file names the server hands out


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


# --- building a study ---------------------------------------------------------------------------------------


def k_weighting(rate: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """ITU-R BS.1770's K-weighting at any sample rate: its high shelf and high pass as (b, a) biquads.

    The standard gives coefficients at 48 kHz only; these are the analogue prototypes fitted to them
    (shelf: 1681.97 Hz, +4.0 dB, Q 0.7072; high pass: 38.14 Hz, Q 0.5003), mapped by the bilinear transform.
    """
    k = np.tan(np.pi * 1681.974450955533 / rate)
    q, gain = 0.7071752369554196, 10 ** (3.999843853973347 / 20)
    mid = gain**0.4996667741545416  # the shelf's gain at its centre
    den = 1 + k / q + k * k
    shelf = (np.array([gain + mid * k / q + k * k, 2 * (k * k - gain), gain - mid * k / q + k * k]) / den,
             np.array([1.0, 2 * (k * k - 1) / den, (1 - k / q + k * k) / den]))  # fmt: skip
    k, q = np.tan(np.pi * 38.13547087602444 / rate), 0.5003270373238773
    den = 1 + k / q + k * k
    highpass = np.array([1.0, -2.0, 1.0]), np.array([1.0, 2 * (k * k - 1) / den, (1 - k / q + k * k) / den])
    return [shelf, highpass]


def loudness(audio: np.ndarray, rate: int = SAMPLE_RATE) -> float:
    """Integrated loudness in LUFS (ITU-R BS.1770-4: K-weighting, 400 ms blocks with 75% overlap, absolute
    gate at -70 LUFS, relative gate 10 LU below). A clip shorter than a block is one block. -inf when silent."""
    from scipy.signal import lfilter

    x = np.asarray(audio, np.float64)
    for b, a in k_weighting(rate):
        x = lfilter(b, a, x)
    block, hop = int(0.4 * rate), int(0.1 * rate)
    starts = range(0, max(1, len(x) - block + 1), hop) if len(x) >= block else [0]
    power = np.array([np.mean(x[s : s + block] ** 2) for s in starts])
    lufs = -0.691 + 10 * np.log10(np.maximum(power, 1e-20))
    kept = power[lufs > -70]
    if not kept.size:
        return float("-inf")
    relative = -0.691 + 10 * np.log10(kept.mean()) - 10
    kept = power[(lufs > -70) & (lufs > relative)]
    return float(-0.691 + 10 * np.log10(kept.mean()))


PEAK = 0.98  # a gain that would clip stops here; the stimulus is then quieter than the target, and the plan says so
MAX_GAIN_DB = 40.0  # a near-silent clip is raised at most this much


def match_loudness(audio: np.ndarray, target: float) -> tuple[np.ndarray, dict]:
    """The clip at `target` LUFS, or as near as its peak allows; with what was measured and done."""
    before = loudness(audio)
    gain_db = 0.0 if not np.isfinite(before) else min(target - before, MAX_GAIN_DB)
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    limited = peak > 0 and peak * 10 ** (gain_db / 20) > PEAK
    if limited:
        gain_db = 20 * np.log10(PEAK / peak)
    out = (audio * 10 ** (gain_db / 20)).astype(np.float32)
    return out, {"lufs_before": _finite(before), "gain_db": round(float(gain_db), 3), "peak_limited": bool(limited),
                 "lufs": _finite(loudness(out))}  # fmt: skip


def _finite(x: float) -> float | None:
    return round(float(x), 3) if np.isfinite(x) else None


def _crop(clips: np.ndarray, length: int, usable: list[int], rng) -> np.ndarray:
    """Each clip cut to `length` samples at a random offset inside its usable (unpadded) part."""
    out = np.zeros((len(clips), length), np.float32)
    for i, clip in enumerate(clips):
        room = max(0, min(usable[i], clip.shape[-1]) - length)
        start = int(rng.integers(0, room + 1))
        piece = np.asarray(clip[start : start + length], np.float32)
        out[i, : len(piece)] = piece
    return out


class StudyError(ValueError):
    """A study that can't be built or opened as asked; the message names the folder and what to do."""


def build(folder: str | Path, real: np.ndarray, real_categories: list[str], generated: dict[str, tuple[np.ndarray, list | None]],
          p: StudyParams = StudyParams(), dataset: str = "", real_usable: list[int] | None = None,
          real_source: str = "held-out") -> dict:  # fmt: skip
    """Write a study into `folder`: stimuli, plan.json, trials.js, index.html. Returns the plan.

    real: real clips [N, samples] (held-out segments); real_categories: theirs ('' when none);
    generated: system name ("steps-200") -> (clips [M, samples], intended categories or None);
    real_usable: samples of each real clip before its zero padding.

    What a rater sees is drawn from `secrets`, never from the seed: stimulus names, rater
    tokens, and the key (`order_key`) that orders each rater's trials and sides each 2AFC
    pair. plan.json records all of it, so plan.json is the key; a study built twice shares no
    name and no token. The seed still picks and crops the real clips and makes the anchors. A
    rebuild in a folder whose database holds a plan reuses that plan's names, tokens and key,
    so the same inputs give the same plan, byte for byte, once a study is running.
    """
    folder = Path(folder)
    rng = np.random.default_rng(p.seed)
    unknown = set(p.kinds) - set(KINDS)
    if unknown:
        raise StudyError(f"{folder}: unknown trial kinds {sorted(unknown)}; the kinds are {list(KINDS)}")
    if not generated or len(real) == 0:
        raise StudyError(f"{folder}: a study needs real clips and at least one generated system")
    length = min(min(a.shape[-1] for a, _ in generated.values()), real.shape[-1])
    usable = real_usable if real_usable is not None else [real.shape[-1]] * len(real)
    # real clips: those with the fewest padded samples first (padding is silence, and silence gives the answer)
    picks = [int(i) for i in sorted(rng.permutation(len(real)), key=lambda i: usable[i] < length)[: p.clips]]
    real_clips = _crop(np.asarray(real[picks], np.float32), length, [usable[i] for i in picks], rng)
    clips = {"real": (real_clips, [real_categories[i] for i in picks])}
    for system, (audio, labels) in generated.items():
        n = min(p.clips, len(audio))
        clips[system] = (np.asarray(audio[:n, :length], np.float32), list(labels[:n]) if labels else None)
    from .evaluate import noise_like, tone_sweeps  # only here: the server needs no torch

    for anchor, make in (("noise", noise_like), ("tones", tone_sweeps)):
        clips[anchor] = (make(real_clips, len(real_clips), p.seed), None)

    held = _held_plan(folder)  # a running study's key, kept
    held_names = {(v["system"], v["clip"]): name for name, v in (held or {}).get("stimuli", {}).items()}
    held_raters = (held or {}).get("slots", [])
    stimuli_dir = folder / "stimuli"
    stimuli_dir.mkdir(parents=True, exist_ok=True)
    stimuli = {}
    from .audio import write_wav

    for system, (audio, labels) in clips.items():
        for i, clip in enumerate(audio):
            name = held_names.get((system, i))
            while name is None or name in stimuli:
                name = secrets.token_hex(8)
            info = {"system": system, "clip": i, "category": (labels[i] if labels else "") or ""}
            if p.loudness_match:
                clip, measured = match_loudness(clip, p.loudness_lufs)
                info |= measured
            write_wav(stimuli_dir / f"{name}.wav", clip)
            info["sha256"] = hashlib.sha256((stimuli_dir / f"{name}.wav").read_bytes()).hexdigest()
            stimuli[name] = info
    for stale in stimuli_dir.glob("*.wav"):  # a former build's names
        if stale.stem not in stimuli:
            stale.unlink()
    categories = sorted({c for c in clips["real"][1] if c})
    plan = {
        "dataset": dataset,
        "params": p.to_dict(),
        "kinds": [k for k in p.kinds if k != "category" or len(categories) >= 2],
        "systems": list(generated),
        "categories": categories,
        "clip_seconds": length / SAMPLE_RATE,
        "real_source": real_source,
        "exclusion": {"failed_checks": p.exclude_failed_checks, "min_completed": p.exclude_min_completed,
                      "mos_noise_max": p.mos_noise_max},  # fmt: skip
        "order_key": (held or {}).get("order_key") or secrets.randbits(63),
        "stimuli": stimuli,
    }
    tokens = held_raters[: p.raters] + [new_token() for _ in range(p.raters - len(held_raters))]
    plan["slots"] = tokens  # the planned raters' tokens by slot number (JSON keeps plan["raters"] sorted)
    plan["raters"] = {token: slot_trials(plan, r) for r, token in enumerate(tokens)}
    plan["plan_id"] = plan_id(plan)
    _check_answers_fit(folder, plan)
    write_text(folder / "plan.json", json.dumps(plan, indent=1, sort_keys=True))
    public = {"plan_id": plan["plan_id"], "raters": {r: [public_trial(t, plan) for t in ts] for r, ts in plan["raters"].items()}}
    write_text(folder / "trials.js", "window.LISTENING_TRIALS = " + json.dumps(public, sort_keys=True) + ";\n")
    write_text(folder / "index.html", render_page(plan))
    return plan


def new_token() -> str:
    """A rater's token: 64 bits from the operating system's cryptographic source."""
    return secrets.token_hex(8)


def plan_id(plan: dict) -> str:
    body = {k: v for k, v in plan.items() if k != "plan_id"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def slot_trials(plan: dict, r: int) -> list[dict]:
    """Rater slot r's trials, kind by kind, each block in the slot's own order: from the plan alone, for any r, so that
    slots drawn after the plan (Store.claim) are counterbalanced as the planned ones are.

    Balanced: every rater gets the same number of trials of each system; clip i of a system goes to
    slot r in rotation (r * count + j), so over raters every clip is heard equally often; the real clip
    of a 2AFC pair sits left in half of each rater's pairs of a system, and over each two slots when that
    count is odd. Which half, and the order, come from the plan's secret order_key, not the seed.
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
    flips = np.random.default_rng([key, r // 2, 1]).integers(0, 2, len(systems) + 1)  # shared by two slots
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


def render_page(plan: dict) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("cry_diffusion", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined)  # fmt: skip
    return env.get_template("listening.html.j2").render(plan_id=plan["plan_id"], scale=MOS_SCALE, dataset=plan["dataset"],
                                                        seconds=plan["clip_seconds"])  # fmt: skip


# --- the database -------------------------------------------------------------------------------------------


class BadRequest(Exception):
    """An answer or request that is refused, with the HTTP status that says why; nothing was stored."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS raters (rater TEXT PRIMARY KEY, claimed_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS slots (slot INTEGER PRIMARY KEY, rater TEXT UNIQUE NOT NULL, claimed_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS fetches (rater TEXT NOT NULL, stimulus TEXT NOT NULL, first_at REAL NOT NULL,
    count INTEGER NOT NULL, PRIMARY KEY (rater, stimulus));
CREATE TABLE IF NOT EXISTS answers (
    rater TEXT NOT NULL, trial TEXT NOT NULL, kind TEXT NOT NULL, stimuli TEXT NOT NULL, answer TEXT NOT NULL,
    response_ms INTEGER NOT NULL, plays TEXT NOT NULL, received_at REAL NOT NULL, via TEXT NOT NULL,
    PRIMARY KEY (rater, trial));
"""


def load_plan(folder: str | Path) -> dict:
    path = Path(folder) / "plan.json"
    if not path.is_file():
        raise StudyError(f"{folder}: no plan.json: not a listening study (build one with the `listening` rule)")
    return json.loads(path.read_text())


def study_plan(folder: str | Path) -> dict:
    """plan.json with the rater slots the server drew after it (Store.claim) among its raters: what the analysis reads.

    A drawn slot's trials follow from plan.json and the slot's number (slot_trials), so plan.json
    stays the key; the database only says which token holds which number.
    """
    plan = load_plan(folder)
    path = Path(folder) / DATABASE
    if not path.exists():
        return plan
    with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)) as db:
        held = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'slots'").fetchone()
        drawn = db.execute("SELECT slot, rater FROM slots ORDER BY slot").fetchall() if held else []
    return plan | {"raters": plan["raters"] | {rater: slot_trials(plan, slot) for slot, rater in drawn}}


def _held_plan(folder: Path) -> dict | None:
    """The plan a study's database was opened with (its meta table), or None."""
    path = folder / DATABASE
    if not path.exists():
        return None
    with _connect(path) as db:
        if not _has_tables(db):
            return None
        held = dict(db.execute("SELECT key, value FROM meta").fetchall())
    return json.loads(held["plan"]) if "plan" in held else None


def _check_answers_fit(folder: Path, plan: dict) -> None:
    """Answers given to one plan are never mixed with another: a rebuild that changes the plan is refused."""
    path = folder / DATABASE
    if not path.exists():
        return
    with _connect(path) as db:
        held = dict(db.execute("SELECT key, value FROM meta").fetchall()) if _has_tables(db) else {}
        answers = db.execute("SELECT COUNT(*) FROM answers").fetchone()[0] if held else 0
    if answers and held.get("plan_id") != plan["plan_id"]:
        raise StudyError(f"{path} holds {answers} answers to plan {held.get('plan_id')}, and this build makes plan "
                         f"{plan['plan_id']} (other stimuli, raters or exclusion rule). Answers to one plan are never "
                         f"mixed with another's: undo the change that altered the plan, or move {path} away to start "
                         "a new study (its plan is kept inside it, in the meta table).")


@contextlib.contextmanager
def _connect(path: Path):
    """A connection for one request, closed after it (SQLite's own context manager only commits)."""
    db = sqlite3.connect(path, timeout=30, isolation_level=None)  # explicit transactions below
    try:
        db.execute("PRAGMA busy_timeout = 30000")
        yield db
    finally:
        db.close()


def _has_tables(db) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE name = 'answers'").fetchone() is not None


class Store:
    """The study's answers: answers.sqlite beside plan.json, in WAL mode (the server writes while the
    pipeline reads). Opening it for a plan it does not belong to is refused."""

    def __init__(self, folder: str | Path, create: bool = True):
        self.folder = Path(folder)
        self.plan = load_plan(folder)
        self.path = self.folder / DATABASE
        self.trials = {r: {t["id"]: t for t in ts} for r, ts in self.plan["raters"].items()}
        self.planned = self.plan.get("slots") or list(self.plan["raters"])  # a plan from before slots were drawn: any order
        self._lock = threading.Lock()  # one writer at a time inside this process; SQLite orders processes
        if not create and not self.path.exists():
            return
        with _connect(self.path) as db:
            db.execute("PRAGMA journal_mode = WAL")
            db.executescript(SCHEMA)
            db.execute("BEGIN IMMEDIATE")
            held = dict(db.execute("SELECT key, value FROM meta").fetchall())
            if not held:
                db.executemany("INSERT INTO meta VALUES (?, ?)",
                               [("plan_id", self.plan["plan_id"]), ("plan", json.dumps(self.plan, sort_keys=True))])  # fmt: skip
            db.execute("COMMIT")
        if held and held["plan_id"] != self.plan["plan_id"]:
            raise StudyError(f"{self.path} belongs to plan {held['plan_id']}, and {self.folder / 'plan.json'} is plan "
                             f"{self.plan['plan_id']}: move the database away to start a new study")  # fmt: skip
        with _connect(self.path) as db:
            for slot, rater in db.execute("SELECT slot, rater FROM slots"):
                self.trials[rater] = {t["id"]: t for t in slot_trials(self.plan, slot)}

    def _db(self):
        return _connect(self.path)

    def rater(self, rater: object) -> dict:
        if not isinstance(rater, str) or rater not in self.trials:
            raise BadRequest(404, f"unknown rater {str(rater)[:40]!r}")
        return self.trials[rater]

    def claim(self) -> str:
        """A rater slot for an anonymous visitor: the first planned one no one has started, else a new one.

        New slots are numbered on from the planned ones and get their trials as a planned slot of
        that number would (slot_trials), so any number of claims never locks the study, and
        counterbalancing goes on. Their tokens are drawn here and kept in the database.
        """
        with self._lock, self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            taken = {r for (r,) in db.execute("SELECT rater FROM raters")} | {r for (r,) in db.execute("SELECT DISTINCT rater FROM answers")}
            free = [r for r in self.planned if r not in taken]
            if free:
                rater = free[0]
                db.execute("INSERT INTO raters VALUES (?, ?)", (rater, time.time()))
            else:
                slot = len(self.planned) + db.execute("SELECT COUNT(*) FROM slots").fetchone()[0]
                rater = new_token()
                db.execute("INSERT INTO slots VALUES (?, ?, ?)", (slot, rater, time.time()))
                db.execute("INSERT INTO raters VALUES (?, ?)", (rater, time.time()))
                self.trials[rater] = {t["id"]: t for t in slot_trials(self.plan, slot)}
            db.execute("COMMIT")
        return rater

    def fetched(self, rater: str, stimulus: str) -> None:
        """The server sent `stimulus` to `rater` (a request carrying their token): when first, and how often."""
        if rater not in self.trials:
            return
        with self._lock, self._db() as db:
            db.execute("INSERT INTO fetches VALUES (?, ?, ?, 1) ON CONFLICT (rater, stimulus) DO UPDATE SET count = count + 1",
                       (rater, stimulus, time.time()))  # fmt: skip

    def _heard(self, db, rater: str, trial: dict) -> None:
        """Refuse (422) an answer from the server unless it sent the rater every clip of the trial, the first of them
        at least as long ago as the clips last one after the other: the least time in which they can be heard to the end."""
        sent = dict(db.execute(f"SELECT stimulus, first_at FROM fetches WHERE rater = ? AND stimulus IN "
                               f"({', '.join('?' * len(trial['stimuli']))})", (rater, *trial["stimuli"])).fetchall())  # fmt: skip
        if set(sent) != set(trial["stimuli"]):
            raise BadRequest(422, f"trial {trial['id']}: the server has not sent this rater every clip of the trial")
        if time.time() - min(sent.values()) < self.plan["clip_seconds"] * len(trial["stimuli"]):
            raise BadRequest(422, f"trial {trial['id']}: answered sooner than its clips take to play")

    def progress(self, rater: str) -> dict:
        """Where a rater stands: the next trial not yet answered (None when done), and how many are answered."""
        trials = self.rater(rater)
        with self._lock, self._db() as db:
            db.execute("INSERT OR IGNORE INTO raters VALUES (?, ?)", (rater, time.time()))
            done = {t for (t,) in db.execute("SELECT trial FROM answers WHERE rater = ?", (rater,))}
        todo = [t for t in trials.values() if t["id"] not in done]
        return {"rater": rater, "answered": len(done), "total": len(trials),
                "trial": public_trial(todo[0], self.plan) if todo else None}  # fmt: skip

    def check(self, payload: object) -> tuple:
        """A row for the answers table from an answer payload, or BadRequest: the one set of checks for
        the server and the importer."""
        if not isinstance(payload, dict):
            raise BadRequest(400, "an answer is a JSON object")
        extra = set(payload) - {"rater", "trial", "answer", "response_ms", "plays", "answered_at"}
        if extra:
            raise BadRequest(400, f"unexpected fields {sorted(extra)}")
        trial = self.rater(payload.get("rater")).get(payload.get("trial")) if isinstance(payload.get("trial"), str) else None
        if trial is None:
            raise BadRequest(404, f"unknown trial {str(payload.get('trial'))[:40]!r} for this rater")
        answer = payload.get("answer")
        options = public_trial(trial, self.plan)["options"]
        if not isinstance(answer, str) or answer not in options:
            raise BadRequest(422, f"answer {str(answer)[:40]!r} is not one of this trial's options")
        ms = payload.get("response_ms")
        if isinstance(ms, bool) or not isinstance(ms, int) or not 0 <= ms <= 24 * 3600 * 1000:
            raise BadRequest(422, "response_ms must be a whole number of milliseconds, 0 to a day")
        plays = payload.get("plays")
        if not isinstance(plays, dict) or set(plays) != set(trial["stimuli"]) or not all(
                isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 1000 for v in plays.values()):  # fmt: skip
            raise BadRequest(422, "plays must count each of the trial's clips, each played to the end at least once")
        return (payload["rater"], trial["id"], trial["kind"], json.dumps(trial["stimuli"]), answer, ms,
                json.dumps({s: plays[s] for s in trial["stimuli"]}))  # fmt: skip

    def add(self, payload: object, via: str = "server") -> bool:
        """Store one answer; True when stored, False when the same answer was there already (stored once).
        A different answer to an answered trial is refused (409): the first one stands."""
        return self.add_many([payload], via)[0]

    def add_many(self, payloads: list, via: str) -> list[bool]:
        """Store answers all together or none (a rater's downloaded file is taken whole or not at all).

        Through the server (via "server"), a new answer also needs the server to have sent the rater
        the trial's clips long enough ago (_heard); a file's answers were played from the file.
        """
        rows = [self.check(p) for p in payloads]
        stored = []
        with self._lock, self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                for row in rows:
                    held = db.execute("SELECT answer FROM answers WHERE rater = ? AND trial = ?", row[:2]).fetchone()
                    if held and held[0] != row[4]:
                        raise BadRequest(409, f"trial {row[1]} of rater {row[0]} is answered already ({held[0]!r}); "
                                              "the first answer stands")  # fmt: skip
                    if not held and via == "server":
                        self._heard(db, row[0], self.trials[row[0]][row[1]])
                    if not held:
                        db.execute("INSERT INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (*row, time.time(), via))
                    stored.append(not held)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            if any(stored):  # into the main file now: its time then says when the last answer came (the pipeline's trigger)
                db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        return stored


def read_answers(folder: str | Path) -> list[dict]:
    """Every stored answer of a study, read-only (the server may be writing); [] when none has come."""
    path = Path(folder) / DATABASE
    if not path.exists():
        return []
    with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)) as db:
        if not _has_tables(db):
            return []
        held = dict(db.execute("SELECT key, value FROM meta").fetchall())
        rows = db.execute("SELECT rater, trial, kind, stimuli, answer, response_ms, plays, received_at, via FROM answers "
                          "ORDER BY received_at, rater, trial").fetchall()  # fmt: skip
    plan = load_plan(folder)
    if rows and held.get("plan_id") != plan["plan_id"]:
        raise StudyError(f"{path} holds answers to plan {held.get('plan_id')}, not to {folder}/plan.json ({plan['plan_id']})")
    keys = ("rater", "trial", "kind", "stimuli", "answer", "response_ms", "plays", "received_at", "via")
    return [dict(zip(keys, r)) | {"stimuli": json.loads(r[3]), "plays": json.loads(r[6])} for r in rows]


def import_files(folder: str | Path, files: list[str | Path]) -> list[str]:
    """Answers downloaded by the page run from files (one JSON per rater) into the database, with the
    server's checks; a file with any bad answer is refused whole. Returns one line per file."""
    store = Store(folder)
    said = []
    for path in files:
        try:
            data = json.loads(Path(path).read_text())
            if not isinstance(data, dict) or not isinstance(data.get("answers"), list):
                raise BadRequest(400, "not a listening answers file (no 'answers' list)")
            if data.get("plan_id") != store.plan["plan_id"]:
                raise BadRequest(409, f"answers to plan {str(data.get('plan_id'))[:40]!r}, not this study's {store.plan['plan_id']}")
            payloads = [dict(a, rater=data.get("rater")) if isinstance(a, dict) else a for a in data["answers"]]
            stored = store.add_many(payloads, via=f"import {Path(path).name}")
            said.append(f"{path}: {sum(stored)} answers added, {len(stored) - sum(stored)} already there")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, BadRequest) as exc:
            said.append(f"{path}: REFUSED, nothing added: {exc}")
    return said


# --- the server ---------------------------------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    """The page, the stimuli and the /api; nothing else of the folder is reachable."""

    store: Store  # set by serve()
    server_version = "cry-diffusion-listening"

    def log_message(self, fmt, *args):  # one line per request on stderr, without the client's address
        sys.stderr.write("%s %s\n" % (self.log_date_time_string(), fmt % args))

    def _send(self, status: int, body: bytes, kind: str = "application/json", cache: str = "no-store") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", cache)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj: dict) -> None:
        self._send(status, json.dumps(obj).encode())

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    def do_GET(self):
        path = urlsplit(self.path).path
        try:
            if path in ("/", "/index.html"):
                return self._send(200, (self.store.folder / "index.html").read_bytes(), "text/html; charset=utf-8")
            if path.startswith("/stimuli/"):
                name = unquote(path[len("/stimuli/"):])
                if not STIMULUS.fullmatch(name) or name[:-4] not in self.store.plan["stimuli"]:
                    return self._error(404, "no such stimulus")
                rater = parse_qs(urlsplit(self.path).query).get("rater", [None])[0]
                if rater and self.command == "GET":  # what the server sent whom: an answer needs its clips sent first
                    self.store.fetched(rater, name[:-4])
                return self._send(200, (self.store.folder / "stimuli" / name).read_bytes(), "audio/wav", "private, max-age=3600")
            match = re.fullmatch(r"/api/raters/([^/]+)", path)
            if match:
                return self._json(200, self.store.progress(unquote(match.group(1))))
            return self._error(404, "not found")
        except BadRequest as exc:
            return self._error(exc.status, str(exc))

    do_HEAD = do_GET

    def do_POST(self):
        path = urlsplit(self.path).path
        if path not in ("/api/raters", "/api/answers"):
            return self._error(404, "not found")
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            return self._error(411, "a Content-Length is needed")
        if not 0 <= length <= MAX_BODY:
            self.close_connection = True  # the body is left unread
            return self._error(413, f"bodies are at most {MAX_BODY} bytes")
        body = self.rfile.read(length)
        try:
            if path == "/api/raters":
                return self._json(201, {"rater": self.store.claim()})
            try:
                payload = json.loads(body.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                return self._error(400, "malformed JSON")
            stored = self.store.add(payload)
            return self._json(201 if stored else 200, {"stored": stored, **self.store.progress(payload["rater"])})
        except BadRequest as exc:
            return self._error(exc.status, str(exc))

    def _refuse(self):
        self._error(405, "method not allowed")

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse


def make_server(folder: str | Path, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    store = Store(folder)
    handler = type("StudyHandler", (Handler,), {"store": store})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cry_diffusion.listening", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve a study and record its answers in FOLDER/answers.sqlite")
    serve.add_argument("folder")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface; 127.0.0.1 by default)")
    serve.add_argument("--port", type=int, default=8000, help="0: any free port")
    imp = sub.add_parser("import", help="add answers downloaded by the page run from files (one JSON per rater)")
    imp.add_argument("folder")
    imp.add_argument("files", nargs="+")
    a = ap.parse_args(argv)
    try:
        if a.command == "import":
            said = import_files(a.folder, a.files)
            print("\n".join(said))
            return 1 if any("REFUSED" in line for line in said) else 0
        server = make_server(a.folder, a.host, a.port)
    except StudyError as exc:
        print(exc, file=sys.stderr)
        return 2
    host, port = server.server_address[:2]
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    print(f"serving {a.folder} ({len(server.RequestHandlerClass.store.plan['raters'])} rater slots)", flush=True)
    print(f"share: http://{shown}:{port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
