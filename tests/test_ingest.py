import pytest

from cry_diffusion import ingest


def verdicts(manifest):
    return {row.relpath: (row.status, row.reason) for row in manifest.itertuples()}


def test_every_file_is_accounted_for_with_a_reason(bad_corpus):
    manifest = ingest.build_manifest(bad_corpus, ingest.IngestParams())
    v = verdicts(manifest)
    all_files = {str(p.relative_to(bad_corpus)) for p in bad_corpus.rglob("*") if p.is_file()}
    assert set(v) == all_files  # nothing silently dropped
    assert v["pain/good_44k.wav"] == ("ok", "")
    assert v["pain/good_stereo_22k.wav"][0] == "ok"
    assert v["hunger/good.flac"][0] == "ok"
    expected = {
        "pain/corrupt.wav": "unreadable",
        "pain/zero.wav": "empty",
        "pain/notes.wav": "unreadable",
        "hunger/silent.wav": "silent",
        "hunger/short.wav": "too short",
        "hunger/nan.wav": "non-finite",
        "hunger/clipped.wav": "clipped",
        "hunger/good_copy.flac": "duplicate",
    }
    for name, kind in expected.items():
        status, reason = v[name]
        assert status == "rejected" and reason.startswith(kind), (name, reason)
    assert v["README.txt"][0] == "skipped"
    # A duplicate names the file it duplicates; the first in path order is the one kept.
    assert v["hunger/good_copy.flac"][1].endswith("hunger/good.flac")


def test_manifest_records_the_source_format(bad_corpus):
    m = ingest.build_manifest(bad_corpus).set_index("relpath")
    row = m.loc["pain/good_stereo_22k.wav"]
    assert (row.sample_rate, row.channels) == (22050, 2)
    assert row.duration_s == pytest.approx(1.6, abs=1e-3)
    assert row.category == "pain" and len(row.sha256) == 64


def test_workers_give_the_same_manifest(bad_corpus):
    one = ingest.build_manifest(bad_corpus, workers=1)
    two = ingest.build_manifest(bad_corpus, workers=2)
    assert one.equals(two)


def test_category_from_filename(tmp_path):
    from conftest import tone, write

    write(tmp_path / "a" / "0b2-m-04-hu.wav", tone(400, 1, 16000), 16000)
    write(tmp_path / "b" / "0b3-f-02-bp.wav", tone(300, 1, 16000), 16000)
    write(tmp_path / "unlabelled.wav", tone(500, 1, 16000), 16000)
    source = ingest.Source(str(tmp_path), category_from="filename", category_pattern=r"-(?P<category>[a-z]{2})\.\w+$")
    m = ingest.build_manifest(source)
    assert dict(zip(m.relpath, m.category)) == {"a/0b2-m-04-hu.wav": "hu", "b/0b3-f-02-bp.wav": "bp", "unlabelled.wav": ""}


def test_manifest_round_trips_through_csv(bad_corpus, tmp_path):
    m = ingest.build_manifest(bad_corpus)
    m.to_csv(tmp_path / "m.csv", index=False)
    back = ingest.read_manifest(tmp_path / "m.csv")
    assert back["category"].tolist() == m["category"].fillna("").tolist()
    assert back["band_limited"].dtype == bool and back["sample_rate"].dtype == "Int64"


def test_missing_root_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        ingest.build_manifest(tmp_path / "nowhere")
