"""A listening study's answers: answers.sqlite beside plan.json, the one way an answer is stored.

The server (cry_diffusion.listening) and the import of answers downloaded by the page run from
files both go through Store.add_many, with the same checks; the pipeline reads what is stored:

    from cry_diffusion import listening_store
    store = listening_store.Store(folder)            # the database, checked against the plan
    rater = store.claim()                            # a rater slot for an anonymous visitor
    store.add(payload)                               # one answer, checked; stored once
    listening_store.import_files(folder, ["listening-PLAN-RATER.json"])   # what `listening import` runs
    answers = listening_store.read_answers(folder)   # read-only, while the server writes
    plan = listening_store.study_plan(folder)        # plan.json with the rater slots drawn since
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from pathlib import Path

from .listening_plan import StudyError, load_plan, new_token, public_trial, slot_trials

DATABASE = "answers.sqlite"


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


def held_plan(folder: Path) -> dict | None:
    """The plan a study's database was opened with (its meta table), or None: a rebuild keeps its names,
    tokens and key (listening_build.build)."""
    path = folder / DATABASE
    if not path.exists():
        return None
    with _connect(path) as db:
        if not _has_tables(db):
            return None
        held = dict(db.execute("SELECT key, value FROM meta").fetchall())
    return json.loads(held["plan"]) if "plan" in held else None


def check_answers_fit(folder: Path, plan: dict) -> None:
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
