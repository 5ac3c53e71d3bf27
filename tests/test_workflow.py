"""The real Snakemake workflow on a tiny config in a temporary folder."""

import subprocess
import sys

import pandas as pd
import pytest
import yaml
from conftest import REPO, make_bad_corpus

import browser

pytestmark = pytest.mark.slow

TINY = {
    "embedded_corpus": {"clips_per_category": 2, "seconds": [1.5, 2.5]},
    "datasets": {
        "embedded": {"root": "results/embedded_corpus", "segment_seconds": 1},
        "messy": {"root": "corpus", "segment_seconds": 0.5, "remainder": "drop"},
    },
    "report": {"examples_per_dataset": 3},
}


def snakemake(workdir, *args, check=True):
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if check and proc.returncode:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def planned_rules(workdir, target="results/report.html"):
    """Rule names a dry run would execute."""
    out = snakemake(workdir, "-n", target, "--quiet", "rules").stdout
    rules, in_table = set(), False
    for line in out.splitlines():
        if line.startswith("job ") and "count" in line:
            in_table = True
        elif in_table and line.strip() and not line.startswith("-"):
            name = line.split()[0]
            if name == "total":
                break
            rules.add(name)
    return rules


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("wf")
    # A user corpus that mixes good and bad files, the same as the unit tests use.
    make_bad_corpus(workdir / "corpus")
    (workdir / "config.yaml").write_text(yaml.safe_dump(TINY))
    snakemake(workdir, "--cores", "2", "results/report.html")
    return workdir


def test_outputs_exist_and_agree(run):
    for name in ("embedded", "messy"):
        for f in ("manifest.csv", "segments.csv", "segments.npy", "segments.json", "mels.npy", "figures/mels.png"):
            assert (run / "results" / name / f).stat().st_size > 0, (name, f)
        for rule in ("ingest", "segment", "mel"):
            assert (run / "results" / "logs" / name / f"{rule}.log").exists()
            assert (run / "results" / "benchmarks" / name / f"{rule}.tsv").exists()
    corpus = sorted((run / "results" / "embedded_corpus").rglob("*.wav"))
    assert len(corpus) == 10
    manifest = pd.read_csv(run / "results" / "embedded" / "manifest.csv")
    assert (manifest.loc[manifest.relpath.str.endswith(".wav"), "status"] == "ok").all()
    assert set(manifest.sample_rate.dropna()) == {44100, 22050}


def test_bad_files_are_listed_and_the_rest_processed(run):
    m = pd.read_csv(run / "results" / "messy" / "manifest.csv", keep_default_na=False).set_index("relpath")
    assert m.loc["pain/corrupt.wav", "status"] == "rejected"
    assert m.loc["pain/zero.wav", "reason"].startswith("empty")
    assert m.loc["pain/notes.wav", "reason"].startswith("unreadable")
    assert m.loc["hunger/silent.wav", "reason"].startswith("silent")
    seg = pd.read_csv(run / "results" / "messy" / "segments.csv")
    assert set(seg.path.map(lambda p: p.split("corpus/")[-1])) == {"pain/good_44k.wav", "pain/good_stereo_22k.wav", "hunger/good.flac"}
    assert len(seg) == 4 + 3 + 2  # 2.3 s, 1.6 s, 1.2 s in 0.5 s segments, remainders dropped


def test_report_opens_with_images_and_playable_audio(run):
    html = run / "results" / "report.html"
    text = html.read_text()
    assert "messy" in text and "unreadable" in text
    if not browser.available():
        pytest.skip("headless Chromium not installed (.ci/run installs it)")
    seen = browser.inspect(html)
    assert len(seen["images"]) == 6 and all(i["ok"] for i in seen["images"])
    assert len(seen["audio"]) == 6 and all(a["ok"] for a in seen["audio"])


def test_mel_change_reruns_mel_and_after_only(run):
    assert planned_rules(run) == set()  # up to date after the run
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["mel"] = {"hop_ms": 12.5}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    try:
        assert planned_rules(run) == {"mel", "report"}
    finally:
        (run / "config.yaml").write_text(yaml.safe_dump(TINY))


def test_segment_change_of_one_dataset_spares_the_other(run):
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["datasets"]["messy"]["remainder"] = "pad"
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    try:
        out = snakemake(run, "-n", "results/report.html").stdout
        assert "output: results/messy/segments.npy" in out and "output: results/embedded/segments.npy" not in out
        assert planned_rules(run) == {"segment", "mel", "data_figures", "report"}
    finally:
        (run / "config.yaml").write_text(yaml.safe_dump(TINY))


@pytest.mark.parametrize(
    "dataset, key",
    [
        ({"root": "nowhere"}, "datasets.d.root"),
        ({"root": ".", "kind": "sideways"}, "kind"),
        ({"root": ".", "segment_seconds": 0}, "segment_seconds"),
        ({"root": ".", "category": {"from": "filename", "pattern": "-(..)\\.wav"}}, "datasets.d.category.pattern"),
        ({"root": ".", "category": {"from": "filename"}}, "datasets.d.category.pattern"),
    ],
)
def test_bad_config_fails_at_start_naming_the_key(tmp_path, dataset, key):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"datasets": {"d": dataset}}))
    proc = snakemake(tmp_path, "-n", "results/report.html", check=False)
    assert proc.returncode != 0
    assert key in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()


def test_lint_is_clean():
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
