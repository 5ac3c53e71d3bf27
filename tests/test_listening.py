"""The blind listening test: a study built from real audio, a real server and database, a real browser answering it."""

import http.client
import json
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from rater import Serving, answer_trials, chromium, library_env, state

import browser
from cry_diffusion import audio, listening, listening_analysis, listening_build, listening_plan, listening_store
from cry_diffusion.listening_plan import StudyParams

RATE = 16000
SYSTEMS = ("steps-200", "steps-12", "steps-6")  # three, so that rankings can be compared


def sounds(seed: int, n: int, seconds: float, kind: str) -> np.ndarray:
    """Cry-like harmonic tones (real) or noisier versions of them (generated), at varied levels."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    out = []
    for _ in range(n):
        f0 = rng.uniform(350, 550)
        x = sum(np.sin(2 * np.pi * f0 * h * t * (1 + 0.1 * t)) / h for h in (1, 2, 3))
        if kind == "generated":
            x = x + rng.uniform(0.3, 1.5) * rng.standard_normal(len(t))
        out.append(rng.uniform(0.05, 0.5) * x / np.abs(x).max())
    return np.asarray(out, np.float32)


def make_study(folder: Path, **params) -> dict:
    real = sounds(0, 10, 0.5, "real")
    categories = ["hunger", "pain"] * 5
    generated = {s: (sounds(i + 1, 6, 0.25, "generated"), None) for i, s in enumerate(SYSTEMS)}
    usable = [len(real[0])] * 8 + [1000, 1000]  # the last two mostly zero padding: picked last
    p = StudyParams.from_dict({"raters": 3, "clips": 4, "afc_per_system": 1, "mos_per_system": 1, "category_trials": 2} | params)
    return listening_build.build(folder, real, categories, generated, p, "synthetic", usable)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study")
    make_study(folder)
    return folder


def test_the_study_hides_the_answer_and_is_balanced(study, tmp_path):
    plan = listening_plan.load_plan(study)
    names = sorted(p.name for p in (study / "stimuli").iterdir())
    assert len(names) == 4 * (1 + len(SYSTEMS) + 2) and all(re.fullmatch(r"[0-9a-f]{16}\.wav", n) for n in names)
    page, trials = (study / "index.html").read_text(), (study / "trials.js").read_text()
    for secret in ("steps-", "real", "noise", "tones", "\"system\"", "\"truth\""):  # category names are options, not secrets
        assert secret not in trials.replace("real baby", ""), secret
    assert "steps-" not in page and '"system"' not in page and "trials.js" in page
    # every stimulus at the target loudness (or quieter, where its peak would clip), whatever its level before
    for name, info in plan["stimuli"].items():
        got = listening_build.loudness(audio.load(study / "stimuli" / f"{name}.wav"))
        assert abs(got - info["lufs"]) < 0.1
        assert abs(got - -26) < 0.3 or (info["peak_limited"] and got < -26), info
    assert max(i["lufs_before"] for i in plan["stimuli"].values()) - min(i["lufs_before"] for i in plan["stimuli"].values()) > 6
    # the real clips are cut to the generated clips' length, from the unpadded part
    assert all(len(audio.load(study / "stimuli" / n)) == 4000 for n in names)
    assert {plan["stimuli"][n]["clip"] for n in plan["stimuli"] if plan["stimuli"][n]["system"] == "real"} == {0, 1, 2, 3}
    for rater, ts in plan["raters"].items():
        afc = [t for t in ts if t["kind"] == "afc"]
        assert sorted(t["system"] for t in afc) == sorted([*SYSTEMS, "noise"])
        assert {plan["stimuli"][t["stimuli"][0]]["system"] == "real" for t in afc} == {True, False}  # both positions used
        mos = [t["system"] for t in ts if t["kind"] == "mos"]
        assert sorted(mos) == sorted([*SYSTEMS, "real", "tones", "noise"])
        assert [t["kind"] for t in ts] == sorted((t["kind"] for t in ts), key=["afc", "mos", "category"].index)
    # over raters, each generated clip is heard in turn, none twice before another once
    uses = {}
    for ts in plan["raters"].values():
        for t in ts:
            if t["kind"] == "mos" and t["system"] == "steps-6":
                uses[t["stimuli"][0]] = uses.get(t["stimuli"][0], 0) + 1
    assert sorted(uses.values()) == [1, 1, 1]
    # raters' orders differ
    assert len({tuple(t["system"] for t in ts) for ts in plan["raters"].values()}) > 1


def test_two_builds_share_no_name_and_no_rater(study, tmp_path):
    """Names, tokens and the order came from generators seeded by the study's seed: anyone with the public code and the
    default seed knew which clip was real and could answer as any rater. Now they come from `secrets`, kept in plan.json."""
    plan, again = listening_plan.load_plan(study), make_study(tmp_path / "again")
    assert not set(plan["stimuli"]) & set(again["stimuli"]) and not set(plan["raters"]) & set(again["raters"])
    assert all(re.fullmatch(r"[0-9a-f]{16}", r) for r in again["raters"]) and plan["order_key"] != again["order_key"]
    # the same clips and the same balance, under other names: which side the real clip sits on is not the seed's
    assert sorted(v["sha256"] for v in plan["stimuli"].values()) == sorted(v["sha256"] for v in again["stimuli"].values())
    sides = {tuple(tuple(p["stimuli"][t["stimuli"][0]]["system"] == "real" for t in p["raters"][token] if t["kind"] == "afc")
                   for token in p["slots"]) for p in (plan, again)}  # each build: which side the real clip sits, slot by slot
    assert len(sides) == 2


def dump(folder: Path) -> list[str]:
    with sqlite3.connect(folder / listening_store.DATABASE) as db:
        return list(db.iterdump())


class Client:
    def __init__(self, port):
        self.port = port

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        conn.close()
        return response.status, data


@pytest.fixture
def server(tmp_path):
    import threading

    folder = tmp_path / "study"
    make_study(folder)
    httpd = listening.make_server(folder, port=0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield folder, Client(httpd.server_address[1])
    httpd.shutdown()
    httpd.server_close()


def answer_for(trial: dict, option: int = 0) -> dict:
    return {"trial": trial["id"], "answer": trial["options"][option], "response_ms": 1200, "plays": {s: 1 for s in trial["stimuli"]}}


def listen(client: Client, rater: str, trial: dict, seconds: float = 0.25) -> None:
    """What the page does before an answer opens: fetch the trial's clips with the rater's token, and play them to the end."""
    for name in trial["stimuli"]:
        assert client.request("GET", f"/stimuli/{name}.wav?rater={rater}")[0] == 200
    time.sleep(seconds * len(trial["stimuli"]))


def test_every_hostile_request_is_refused_and_changes_nothing(server):
    folder, client = server
    status, body = client.request("POST", "/api/raters", "{}", {"Content-Length": "2"})
    rater = json.loads(body)["rater"]
    trial = json.loads(client.request("GET", f"/api/raters/{rater}")[1])["trial"]
    # the server sent this rater no clip of the trial yet, then too short a time ago to have played them: refused
    assert client.request("POST", "/api/answers", answer_for(trial) | {"rater": rater})[0] == 422
    listen(client, rater, trial, seconds=0)
    assert client.request("POST", "/api/answers", answer_for(trial) | {"rater": rater})[0] == 422
    time.sleep(0.25 * len(trial["stimuli"]))
    assert client.request("POST", "/api/answers", answer_for(trial) | {"rater": rater})[0] == 201
    before = dump(folder)
    other = next(r for r in listening_plan.load_plan(folder)["raters"] if r != rater)
    good = answer_for(trial) | {"rater": rater}
    hostile = [
        ("GET", "/api/raters/nobody", None, 404),
        ("POST", "/api/answers", good | {"rater": "nobody"}, 404),  # unknown rater
        ("POST", "/api/answers", good | {"rater": other, "trial": "t999"}, 404),  # unknown trial
        ("POST", "/api/answers", good | {"trial": ["t001"]}, 404),
        ("POST", "/api/answers", good | {"answer": "0123456789abcdef"}, 422),  # a stimulus not in this pair
        ("POST", "/api/answers", good | {"answer": trial["options"][1]}, 409),  # a second, different answer
        ("POST", "/api/answers", good | {"response_ms": -5}, 422),
        ("POST", "/api/answers", good | {"response_ms": True}, 422),
        ("POST", "/api/answers", good | {"plays": {}}, 422),  # not played to the end
        ("POST", "/api/answers", good | {"plays": {s: 0 for s in trial["stimuli"]}}, 422),
        ("POST", "/api/answers", good | {"admin": True}, 400),
        ("POST", "/api/answers", [good], 400),
        ("POST", "/api/answers", '{"rater": ', 400),  # malformed JSON
        ("POST", "/api/answers", b"\xff\xfe{}", 400),
        ("POST", "/api/answers", json.dumps(good | {"pad": "x" * 5000}), 413),  # over the size limit
        ("GET", "/stimuli/../plan.json", None, 404),  # paths outside the stimuli folder
        ("GET", "/stimuli/%2e%2e%2fplan.json", None, 404),
        ("GET", "/stimuli/..%2f" + listening_store.DATABASE, None, 404),
        ("GET", "/plan.json", None, 404),
        ("GET", "/" + listening_store.DATABASE, None, 404),
        ("GET", "/stimuli/0000000000000000.wav", None, 404),
        ("DELETE", "/api/answers", None, 405),
        ("PUT", "/api/answers", json.dumps(good), 405),
    ]
    for method, path, body, expected in hostile:
        status, reply = client.request(method, path, body)
        assert status == expected, (method, path, body, status, reply[:200])
        assert status >= 400 and "error" in json.loads(reply)
    status, _ = client.request("POST", "/api/answers", None, {"Content-Length": "100000"})
    assert status == 413
    # the same answer again is stored once
    assert client.request("POST", "/api/answers", good)[0] == 200
    assert dump(folder) == before
    # a stimulus the plan names is served; the page too
    assert client.request("GET", f"/stimuli/{trial['stimuli'][0]}.wav")[0] == 200
    assert client.request("GET", "/")[0] == 200


def test_answers_from_files_go_through_the_same_checks(server, tmp_path):
    folder, _ = server
    plan = listening_plan.load_plan(folder)
    rater, trials = next(iter(plan["raters"].items()))
    public = [listening_plan.public_trial(t, plan) for t in trials]
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"plan_id": plan["plan_id"], "rater": rater, "answers": [answer_for(t) for t in public[:3]]}))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"plan_id": plan["plan_id"], "rater": rater,
                               "answers": [answer_for(t) for t in public[3:5]] + [answer_for(public[5]) | {"answer": "99"}]}))  # fmt: skip
    stranger = tmp_path / "stranger.json"
    stranger.write_text(json.dumps({"plan_id": "0" * 16, "rater": rater, "answers": []}))
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")

    def run(*files):
        return subprocess.run([sys.executable, "-m", "cry_diffusion.listening", "import", str(folder), *map(str, files)],
                              capture_output=True, text=True, env=library_env())  # fmt: skip

    first = run(good)
    assert first.returncode == 0 and "3 answers added" in first.stdout, first
    before = dump(folder)
    again = run(good, bad, stranger, junk)
    assert again.returncode == 1 and "0 answers added, 3 already there" in again.stdout
    assert again.stdout.count("REFUSED, nothing added") == 3, again.stdout
    assert dump(folder) == before  # the bad file's two good answers are not in either
    assert {a["via"] for a in listening_store.read_answers(folder)} == {"import good.json"}


def test_a_rebuild_that_changes_the_plan_is_refused_once_answers_exist(server):
    folder, client = server
    plan = listening_plan.load_plan(folder)
    rater, trials = next(iter(plan["raters"].items()))
    make_study(folder)  # the same plan: fine, before and after answers (the database keeps the study's names and tokens)
    assert listening_plan.load_plan(folder) == plan
    listen(client, rater, trials[0])
    assert client.request("POST", "/api/answers", answer_for(listening_plan.public_trial(trials[0], plan)) | {"rater": rater})[0] == 201
    make_study(folder)
    assert listening_plan.load_plan(folder) == plan
    with pytest.raises(listening_plan.StudyError, match="holds 1 answers to plan"):
        make_study(folder, exclude_failed_checks=2)  # the exclusion rule is fixed once answers come in


def test_anonymous_claims_never_lock_the_study(server):
    """20 anonymous POST /api/raters took every slot, and the study then refused everyone. After three times as many
    claims as slots, a new visitor still gets a trial, a planned link still works, and the drawn slots are balanced."""
    folder, client = server
    plan = listening_plan.load_plan(folder)
    planned = list(plan["raters"])
    claims = [client.request("POST", "/api/raters", "{}") for _ in range(3 * len(planned) + 1)]
    assert [status for status, _ in claims] == [201] * len(claims), claims[-1]
    claimed = [json.loads(body)["rater"] for _, body in claims]
    assert set(claimed[: len(planned)]) == set(planned) and len(set(claimed)) == len(claimed)
    newest = json.loads(client.request("GET", f"/api/raters/{claimed[-1]}")[1])
    assert newest["trial"] is not None and newest["answered"] == 0
    assert json.loads(client.request("GET", f"/api/raters/{planned[0]}")[1])["trial"] is not None
    # a drawn slot's trials are a planned slot's of its number: each clip of a set heard in turn over the slots
    full = listening_store.study_plan(folder)
    assert set(full["raters"]) == set(claimed)
    uses = {}
    for ts in full["raters"].values():
        for t in ts:
            if t["kind"] == "mos" and t["system"] == "steps-6":
                uses[t["stimuli"][0]] = uses.get(t["stimuli"][0], 0) + 1
    assert max(uses.values()) - min(uses.values()) <= 1, uses
    # a drawn rater's answer goes in, and the analysis finds their trials
    trial = newest["trial"]
    listen(client, claimed[-1], trial)
    assert client.request("POST", "/api/answers", answer_for(trial) | {"rater": claimed[-1]})[0] == 201
    result = listening_analysis.analyse(full, listening_store.read_answers(folder), None, listening_analysis.AnalysisParams(bootstrap=20))
    assert result["answers"] == 1 and result["raters_planned"] == len(planned) and result["raters_drawn"] == 2 * len(planned) + 1


# --- simulated raters: the analysis's intervals against known truths ---


def simulate(plan: dict, rng, afc_rate: dict, mos_base: dict, careless: int = 0, clip_effect: bool = True) -> list[dict]:
    """Answers from raters who pick a generated clip as real with afc_rate[system], and rate a clip
    clip(base + rater bias + clip effect + noise, 1, 5) with each term uniform on {-1, 0, 1} (no clip effect:
    the clips of a set are all alike); attentive raters pass every attention check; the first `careless`
    raters fail them and answer the rest at random."""
    stimuli, answers = plan["stimuli"], []
    effect = {name: rng.integers(-1, 2) if clip_effect else 0 for name in stimuli}
    for r, (rater, trials) in enumerate(plan["raters"].items()):
        bias = rng.integers(-1, 2)
        for t in trials:
            options = listening_plan.public_trial(t, plan)["options"]
            real = [s for s in t["stimuli"] if stimuli[s]["system"] == "real"]
            if r < careless:
                noise = [s for s in t["stimuli"] if stimuli[s]["system"] == "noise"]
                answer = (noise[0] if t["kind"] == "afc" else "5") if t["attention"] else options[rng.integers(len(options))]
            elif t["kind"] == "afc":
                fake = next(s for s in t["stimuli"] if s not in real)
                answer = real[0] if t["attention"] else (fake if rng.random() < afc_rate[t["system"]] else real[0])
            elif t["kind"] == "mos":
                rating = 1 if t["attention"] else np.clip(mos_base[t["system"]] + bias + effect[t["stimuli"][0]] + rng.integers(-1, 2), 1, 5)
                answer = str(int(rating))
            else:
                answer = t["truth"] if rng.random() < 0.7 else options[rng.integers(len(options))]
            answers.append({"rater": rater, "trial": t["id"], "kind": t["kind"], "stimuli": t["stimuli"], "answer": answer})
    return answers


def expected_rating(base: int) -> float:
    """E clip(base + b + c + e, 1, 5) with b, c, e independent and uniform on {-1, 0, 1}."""
    grid = np.array(np.meshgrid([-1, 0, 1], [-1, 0, 1], [-1, 0, 1])).reshape(3, -1).sum(0)
    return float(np.clip(base + grid, 1, 5).mean())


def test_simulated_raters_intervals_cover_the_truth(tmp_path):
    plan = make_study(tmp_path / "big", raters=24, clips=6, afc_per_system=2, mos_per_system=2, category_trials=2)
    afc_rate = {"steps-200": 0.45, "steps-12": 0.3, "steps-6": 0.1}
    mos_base = {"steps-200": 4, "steps-12": 3, "steps-6": 2, "real": 4, "tones": 1}
    truth_mos = {s: expected_rating(b) for s, b in mos_base.items()}
    covered = {"afc": [], "mos": []}
    for trial in range(60):
        rng = np.random.default_rng(trial)
        result = listening_analysis.analyse(plan, simulate(plan, rng, afc_rate, mos_base, careless=2), None,
                                            listening_analysis.AnalysisParams(bootstrap=300, seed=trial))  # fmt: skip
        assert [e["rater"] for e in result["excluded"]] == sorted(list(plan["raters"])[:2])  # the careless raters, found
        # the attention rows count every rater: the two careless ones picked the noise (over kept raters: 0 by construction)
        noise = next(r for r in result["afc"] if r["system"] == "noise")
        assert noise["picked_as_real"] == 2 and noise["raters"] == 24 and noise["before_exclusion"]
        for row in result["afc"]:
            if row["system"] != "noise":
                covered["afc"].append(row["low"] <= afc_rate[row["system"]] <= row["high"])
        for row in result["mos"]:
            if row["system"] != "noise":
                covered["mos"].append(row["low"] <= truth_mos[row["system"]] <= row["high"])
    rates = {k: float(np.mean(v)) for k, v in covered.items()}
    assert all(rate >= 0.9 for rate in rates.values()), rates


def test_2afc_interval_and_test_hold_for_clustered_raters():
    """A true pick rate of 50%, rater and clip effects of 1 logit SD: the binomial test rejected 26% of the time and
    the Wilson interval covered 0.5 in 68% of studies. From the two-way bootstrap: about 95% and 5%."""
    from intervals import afc_hits

    covered, rejected = afc_hits(20, 20, 200, np.random.default_rng(0)).mean(0)
    assert covered >= 0.9 and rejected <= 0.1, (covered, rejected)


def test_alpha_is_over_the_generated_clips_of_each_set(tmp_path):
    """With no true differences among generated clips, alpha must be near 0; pooled with real clips and anchors it was 0.4."""
    plan = make_study(tmp_path / "alpha", raters=24, clips=6, afc_per_system=2, mos_per_system=3, kinds=["mos"])
    alphas = []
    for study in range(6):
        rng = np.random.default_rng(study)
        answers = simulate(plan, rng, {}, {"steps-200": 3, "steps-12": 3, "steps-6": 3, "real": 5, "tones": 1}, clip_effect=False)
        result = listening_analysis.analyse(plan, answers, None, listening_analysis.AnalysisParams(bootstrap=10))
        assert set(result["alpha"]["mos"]) == set(SYSTEMS)
        alphas.extend(result["alpha"]["mos"].values())
    assert abs(np.mean(alphas)) < 0.1, alphas


def test_the_analysis_reports_exclusions_agreement_and_rankings(study):
    plan = listening_plan.load_plan(study)
    rng = np.random.default_rng(1)
    answers = simulate(plan, rng, {"steps-200": 0.5, "steps-12": 0.3, "steps-6": 0.05}, {"steps-200": 4, "steps-12": 3,
                       "steps-6": 1, "real": 5, "tones": 1}, careless=0)  # fmt: skip
    # one rater fails the attention checks on purpose
    first = next(iter(plan["raters"]))
    for a in answers:
        t = next(t for t in plan["raters"][a["rater"]] if t["id"] == a["trial"])
        if a["rater"] == first and t["attention"]:
            a["answer"] = "5" if t["kind"] == "mos" else next(s for s in t["stimuli"] if plan["stimuli"][s]["system"] == "noise")
    metrics = {"steps-200": {"FAD": 1.0, "KID": 0.3}, "steps-12": {"FAD": 2.0, "KID": 0.1}, "steps-6": {"FAD": 3.0, "KID": 0.2}}
    result = listening_analysis.analyse(plan, answers, metrics, listening_analysis.AnalysisParams(bootstrap=200))
    assert result["excluded"] == [{"rater": first, "why": "failed 2 of 2 attention checks (the rule: 1 or more)"}]
    assert result["included_raters"] == 2 and result["answers"] == len(answers)
    assert {r["system"] for r in result["afc"]} == {*SYSTEMS, "noise"} and set(result["alpha"]) == {"afc", "mos", "category"}
    assert all(set(by_system) == set(SYSTEMS) for by_system in result["alpha"].values())
    fad = next(a for a in result["agreement"] if a["metric"] == "FAD" and a["listeners"] == "MOS")
    from scipy.stats import spearmanr

    means = {r["system"]: r["mean"] for r in result["mos"]}
    assert fad["systems"] == 3 and fad["rho"] == pytest.approx(spearmanr([-1, -2, -3], [means[s] for s in SYSTEMS]).statistic)
    assert -1 <= fad["low"] <= fad["high"] <= 1
    assert result["category"]["categories"] == ["hunger", "pain"] and result["category"]["real"]["n"] == 2 * 2
    nothing = listening_analysis.analyse(plan, [], metrics)
    assert nothing["answers"] == 0 and nothing["afc"] is None and "cry_diffusion.listening serve" in nothing["how_to_collect"]


def test_krippendorff_alpha_on_known_cases():
    assert listening_analysis.krippendorff_alpha({"a": [1, 1], "b": [2, 2], "c": [3, 3]}, "interval") == pytest.approx(1.0)
    # Krippendorff (2011)'s worked nominal example, reliability data of 3 coders x 12 units, alpha = 0.555 (rounded)
    data = {1: ["1", "1"], 2: ["2", "2"], 3: ["3", "3"], 4: ["3", "3"], 5: ["2", "2"], 6: ["1", "2"], 7: ["4", "4"],
            8: ["1", "1"], 9: ["2", "2"], 10: ["1", "2"], 11: ["3", "1"], 12: ["2", "3"]}  # fmt: skip
    assert -1 <= listening_analysis.krippendorff_alpha(data) < 1
    assert listening_analysis.krippendorff_alpha({"a": ["x", "x"], "b": ["x", "x"]}) is None  # no variation: undefined


# --- a real browser answers the study from the running server ---


def rows(folder: Path) -> list[tuple]:
    with sqlite3.connect(folder / listening_store.DATABASE) as db:
        return db.execute("SELECT rater, trial, answer, plays, response_ms FROM answers ORDER BY trial").fetchall()


@pytest.mark.skipif(not browser.available(), reason="headless Chromium not installed (.ci/run installs it)")
def test_chromium_answers_every_trial_through_a_server_restart(study, tmp_path):
    from selenium.webdriver.support.ui import WebDriverWait

    server = Serving(study).start()
    driver = chromium()
    try:
        driver.get(server.url)
        WebDriverWait(driver, 30).until(lambda d: state(d) == "trial")
        rater = re.search(r"rater=(\w+)", driver.current_url).group(1)
        total = len(listening_plan.load_plan(study)["raters"][rater])
        first = answer_trials(driver, 3)
        WebDriverWait(driver, 10).until(lambda d: len(rows(study)) == 3)
        assert [r[1] for r in rows(study)] == first
        WebDriverWait(driver, 10).until(lambda d: d.find_element("id", "trial").get_attribute("data-loaded") == "yes")
        server.stop()  # the server goes down mid-session: the next answer waits in the page
        second = answer_trials(driver, 1)
        WebDriverWait(driver, 10).until(lambda d: state(d) == "waiting")
        assert len(rows(study)) == 3
        server.start()  # same port: the page sends what it kept and goes on
        WebDriverWait(driver, 30).until(lambda d: state(d) == "trial" and len(rows(study)) == 4)
        driver.refresh()  # a reload resumes the same rater where they were
        third = answer_trials(driver)
        assert rater in driver.current_url and state(driver) == "done"
        assert f"{total} of {total} answered" in driver.find_element("id", "count").text
    finally:
        driver.quit()
        server.stop()
    stored = rows(study)
    assert [r[1] for r in stored] == sorted(first + second + third) and len(stored) == total  # every trial, each once
    assert {r[0] for r in stored} == {rater}
    assert all(min(json.loads(r[3]).values()) >= 1 and r[4] >= 0 for r in stored)
    answers = listening_store.read_answers(study)
    result = listening_analysis.analyse(listening_plan.load_plan(study), answers, None, listening_analysis.AnalysisParams(bootstrap=50))
    assert result["answers"] == total and result["raters"][0]["answered"] == total


@pytest.mark.skipif(not browser.available(), reason="headless Chromium not installed (.ci/run installs it)")
def test_chromium_runs_the_page_from_files_and_its_download_imports(tmp_path):
    from selenium.webdriver.support.ui import WebDriverWait

    folder = tmp_path / "study"
    plan = make_study(folder, raters=2, kinds=["mos"])
    rater = list(plan["raters"])[1]
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver = chromium(downloads)
    try:
        driver.get((folder / "index.html").as_uri() + f"?rater={rater}")
        answered = answer_trials(driver, choose=lambda trial, options: 2)
        assert len(answered) == len(plan["raters"][rater]) and state(driver) == "done"
        WebDriverWait(driver, 10).until(lambda d: list(downloads.glob("listening-*.json")))
    finally:
        driver.quit()
    time.sleep(0.5)  # let Chromium finish writing the file
    (download,) = downloads.glob("listening-*.json")
    assert listening_store.import_files(folder, [download]) == [f"{download}: {len(answered)} answers added, 0 already there"]
    assert {a["answer"] for a in listening_store.read_answers(folder)} == {"3"}
