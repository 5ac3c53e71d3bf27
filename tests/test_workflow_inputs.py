"""The workflow on what a user hands it, with no trained run needed: a bad config stops at the start naming its key,
real corpus layouts run through to segments and rerun only what a change touches, a dataset with nothing to train
on stops at segment; and the workflow's own hygiene (lint, a log and a benchmark for every rule).

Apart from tests/test_workflow.py, whose trained run keeps one pytest worker busy: these run beside it.

    pytest tests/test_workflow_inputs.py
"""

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml
from conftest import REPO, make_bad_corpus, tone, write
from corpora import PHONE_PATTERN, cry, debarbaro_long, encode, phone_app
from test_workflow import TINY, planned_rules, snakemake

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "dataset, key",
    [
        ({"root": "nowhere"}, "datasets.d.root"),
        ({"root": ".", "kind": "sideways"}, "kind"),
        ({"root": ".", "segment_seconds": 0}, "segment_seconds"),
        ({"root": ".", "category": {"from": "filename", "pattern": "-(..)\\.wav"}}, "datasets.d.category.pattern"),
        ({"root": ".", "category": {"from": "filename"}}, "datasets.d.category.pattern"),
        ({"root": ".", "recording": {"from": "filename", "pattern": "^(P..)_"}}, "datasets.d.recording.pattern"),
        ({"root": ".", "category": {"from": "label"}}, "datasets.d.category.from"),
        ({"root": ".", "kind": "manifest"}, "datasets.d.manifest"),
        ({"root": ".", "kind": "manifest", "manifest": "no_path_column.csv"}, "datasets.d.manifest"),
        ({"root": ".", "kind": "annotated", "columns": {"start": 0, "end": "end"}}, "datasets.d.columns"),
        ({"root": ".", "kind": "annotated", "annotations": "{stam}.csv"}, "datasets.d.annotations"),
        ({"root": ".", "kind": "annotated", "cry_labels": []}, "cry_labels"),
        ({"root": ".", "kind": "annotated", "time_unit": "h"}, "time_unit"),
    ],
)
def test_bad_config_fails_at_start_naming_the_key(tmp_path, dataset, key):
    (tmp_path / "no_path_column.csv").write_text("file,category\na.wav,hu\n")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"datasets": {"d": dataset}}))
    proc = snakemake(tmp_path, "-n", "results/report.html", check=False)
    assert proc.returncode != 0
    assert key in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()


def test_a_misspelled_key_is_said_in_a_few_lines(tmp_path):
    """The key, its value and what was expected: not the schema, which once ran to hundreds of lines."""
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"datasets": {"d": {"root": "."}}, "mel": {"hop_msx": 10},
                                                          "train": {"steps": 1}}))  # fmt: skip
    proc = snakemake(tmp_path, "-n", "results/report.html", check=False)
    said = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert proc.returncode != 0 and len(said) <= 5, said
    assert any("config key mel" in line and "'hop_msx' was unexpected" in line for line in said), said
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"datasets": {"d": {"root": "."}}, "train": {"steps": "many"}}))
    proc = snakemake(tmp_path, "-n", "results/report.html", check=False)
    said = proc.stdout + proc.stderr
    assert "config key train.steps: 'many' is not of type 'integer'" in said, said


@pytest.mark.parametrize("contents", ["nothing", "only bad files"])
def test_a_dataset_with_nothing_to_train_on_stops_at_segment(tmp_path, contents):
    """One message naming the dataset and what was found, at segment; no later stage starts and trips over it."""
    root = tmp_path / "corpus"
    root.mkdir()
    if contents == "only bad files":
        (root / "zero.wav").write_bytes(b"")
        (root / "notes.wav").write_text("not audio\n")
        write(root / "silent.wav", np.zeros(16000, np.float32), 16000)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(TINY | {"datasets": {"bare": {"root": "corpus"}}}))
    proc = snakemake(tmp_path, "--cores", "2", "results/report.html", check=False)
    assert proc.returncode != 0
    log = (tmp_path / "results" / "logs" / "bare" / "segment.log").read_text()
    expected = "no files under its root" if contents == "nothing" else "no audio left to cut into segments: 3 files: 3 rejected (empty, silent, unreadable)"
    assert f"dataset bare: nothing to train on: {expected}" in log and "lower heldout_fraction" in log, log[-1500:]
    # and on the console, where the user is looking (profiles/default: show-failed-logs), as the log's last line
    assert f"segment failed: dataset bare: nothing to train on: {expected}" in proc.stdout + proc.stderr
    assert log.strip().splitlines()[-1].startswith("segment failed: dataset bare: nothing to train on")
    ran = {p.stem for p in (tmp_path / "results" / "logs" / "bare").glob("*.log")}
    assert ran == {"ingest", "segment"}, ran


def test_lint_is_clean():
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# Real-corpus layouts, each mixed with bad files: deBarbaro-style annotated recordings,
# a hand-written listing with unicode and spaces in its names, a phone-app corpus.
REAL = {
    "datasets": {
        "debarbaro": {"kind": "annotated", "root": "debarbaro", "segment_seconds": 5, "cry_labels": ["cry"], "heldout_fraction": 0.5},
        "listed": {"kind": "manifest", "root": "listed corpus", "manifest": "ma liste.csv", "category": {"from": "none"}},
        "phone": {"root": "phone app", "category": {"from": "filename", "pattern": PHONE_PATTERN}},
    },
}
DATA_OUTPUTS = ("segments.csv", "figures/mels.png", "figures/categories.png", "figures/durations.png")
DATA_TARGETS = [f"results/{d}/{f}" for d in REAL["datasets"] for f in DATA_OUTPUTS]


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("real")
    root, _ = debarbaro_long(workdir / "debarbaro")
    (root / "P03.wav").write_bytes(b"")  # a failed recording, with its table
    (root / "P03.csv").write_text("start,end,label\n0,5,cry\n")
    write(root / "P04.wav", tone(400, 8.0, 16000), 16000)
    (root / "P04.csv").write_text("onset,offset\n1,2\n")  # wrong column names
    listed = make_bad_corpus(workdir / "listed corpus" / "bad")
    write(listed.parent / "été" / "pleurs 1.wav", tone(450, 4.0, 44100), 44100)
    (listed.parent / "ma liste.csv").write_text(
        "path,category,start,end\n"
        "été/pleurs 1.wav,hunger,0.5,3.5\n"
        "bad/pain/good_44k.wav,pain,,\n"
        "bad/pain/zero.wav,pain,,\n"
        "bad/nope.wav,,,\n",
        encoding="utf-8",
    )
    phone_app(workdir / "phone app")
    # an upload whose name misses the pattern (a real corpus has "...-f-26-ti.caf.caf"): kept, uncategorised
    encode(workdir / "phone app" / "3c4d-1431029140000-1.7-f-26-ti.caf.caf", "caf", "adpcm_ima_qt", 16000,
           cry(1.8, 16000, seed=9))  # fmt: skip
    (workdir / "config.yaml").write_text(yaml.safe_dump(REAL))
    assert planned_rules(workdir, "results/phone/segments.csv") == {"ingest", "segment"}  # one dataset's data stages only
    snakemake(workdir, "--cores", "2", *DATA_TARGETS)
    return workdir


def test_real_layouts_run_through_to_segments(real):
    from cry_diffusion import ingest, report_data, segment

    results = real / "results"
    for name in REAL["datasets"]:
        manifest = ingest.read_manifest(results / name / "manifest.csv")
        table = segment.read_table(results / name / "segments.csv")
        summary = json.loads((results / name / "segments.json").read_text())
        assert abs(summary["unexplained_seconds"]) <= summary["reconcile_tolerance_seconds"], name
        assert (table.groupby("recording")["split"].nunique() == 1).all(), name
        packed = np.load(results / name / "segments.npy", mmap_mode="r")
        figures = {k: results / name / "figures" / f"{k}.png" for k in ("durations", "categories", "mels")}
        section = report_data.data_section(name, manifest, table, summary, packed, figures, examples=2)
        assert section["summary"]["files_found"] == (manifest["row"] == "file").sum()
        assert section["summary"]["regions_found"] == (manifest["row"] == "region").sum()
        assert section["reconciles"] and section["regions"] == (name != "phone"), name

    deb = ingest.read_manifest(results / "debarbaro" / "manifest.csv").set_index("relpath")
    assert deb.loc["P03.csv:2", "reason"] == "recording rejected: empty: zero-byte file"
    assert deb.loc["P04.wav", "status"] == "skipped" and deb.loc["P04.csv", "status"] == "rejected"
    assert segment.read_table(results / "debarbaro" / "segments.csv")["start_s"].tolist() == [1.0, 6.0, 20.25] * 2

    listed = ingest.read_manifest(results / "listed" / "manifest.csv").set_index("relpath")
    assert listed.loc["ma liste.csv:3", "status"] == "ok" and listed.loc["ma liste.csv:4", "reason"].startswith("recording rejected")
    assert listed.loc["ma liste.csv:5", "reason"].startswith("missing")
    starts = segment.read_table(results / "listed" / "segments.csv").groupby("category")["start_s"].apply(list).to_dict()
    assert starts == {"hunger": [0.5, 1.5, 2.5], "pain": [0.0, 1.0]}  # 2.3 s: its last 0.3 s dropped

    phone = segment.read_table(results / "phone" / "segments.csv")
    assert set(phone["category"]) == {"hu", "bp", "ti", ""}
    misnamed = ingest.read_manifest(results / "phone" / "manifest.csv").set_index("relpath").loc["3c4d-1431029140000-1.7-f-26-ti.caf.caf"]
    assert misnamed["status"] == "ok" and misnamed["reason"] == "uncategorised: its name does not match the category pattern"


def test_real_layouts_rerun_only_what_a_change_touches(real):
    def change(edit):
        config = yaml.safe_load((real / "config.yaml").read_text())
        edit(config["datasets"])
        (real / "config.yaml").write_text(yaml.safe_dump(config))

    targets = ("results/debarbaro/segments.csv", "results/listed/segments.csv")
    try:
        assert planned_rules(real, targets[0]) == set()
        change(lambda d: d["debarbaro"].update(segment_seconds=2))
        assert planned_rules(real, targets[0]) == {"segment"}
        change(lambda d: d["debarbaro"].update(cry_labels=["cry", "notcry"]))
        assert planned_rules(real, targets[0]) == {"ingest", "segment"}
    finally:
        (real / "config.yaml").write_text(yaml.safe_dump(REAL))
    listing = real / "listed corpus" / "ma liste.csv"
    listing.write_text(listing.read_text() + "bad/hunger/good.flac,hunger,,\n", encoding="utf-8")
    assert planned_rules(real, targets[1]) == {"ingest", "segment"}


def test_every_rule_has_a_log_and_a_benchmark():
    import re

    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        for name, body in re.findall(r"^rule (\w+):\n(.*?)(?=^rule |\Z)", smk.read_text(), re.S | re.M):
            assert "    log:" in body and "    benchmark:" in body, f"{smk.name}: rule {name}"
