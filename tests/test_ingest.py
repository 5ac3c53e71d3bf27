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


def test_fifo_and_other_special_files_are_skipped_unopened(tmp_path):
    """A FIFO named like audio once hung ingest (open() waits for a writer): now it is listed and never opened."""
    import os
    import subprocess
    import sys

    from conftest import tone, write

    write(tmp_path / "good.wav", tone(440, 1.0, 16000), 16000)
    os.mkfifo(tmp_path / "x.wav")
    code = ("import sys; from cry_diffusion import ingest; m = ingest.build_manifest(sys.argv[1]); "
            "print(m.set_index('relpath').loc['x.wav', ['status', 'reason']].tolist())")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "['skipped', 'not a regular file: a FIFO, not opened']" in proc.stdout


def test_a_listed_path_that_is_not_audio_says_so(tmp_path):
    """A listing that names an existing non-audio file: not 'missing', but what the file is."""
    (tmp_path / "notes.txt").write_text("not audio\n")
    (tmp_path / "list.csv").write_text("path\nnotes.txt\nnowhere.wav\n")
    m = ingest.build_manifest(ingest.Source(str(tmp_path), kind="manifest", manifest="list.csv"))
    regions = m[m["row"] == "region"].set_index("relpath")["reason"].to_dict()
    assert regions["list.csv:2"] == "recording skipped: not an audio extension (.txt)", regions
    assert regions["list.csv:3"].startswith("missing: no file at")


@pytest.mark.parametrize("policy", ["keep", "reject"])
def test_a_file_without_a_category_follows_the_unlabelled_policy(tmp_path, policy):
    from conftest import tone, write

    write(tmp_path / "a-hu.wav", tone(440, 1.0, 16000), 16000)
    write(tmp_path / "b-f-26-ti.caf.wav", tone(900, 1.0, 16000), 16000)  # the pattern wants -xx.wav at the end
    source = ingest.Source(str(tmp_path), category_from="filename", category_pattern=r"-(?P<category>[a-z]{2})\.wav$",
                           unlabelled=policy)  # fmt: skip
    v = verdicts(ingest.build_manifest(source))
    assert v["a-hu.wav"] == ("ok", "")
    if policy == "keep":
        assert v["b-f-26-ti.caf.wav"] == ("ok", "uncategorised: its name does not match the category pattern")
    else:
        assert v["b-f-26-ti.caf.wav"] == ("rejected", "unlabelled: its name does not match the category pattern")


@pytest.mark.parametrize("policy", ["keep", "reject"])
def test_a_truncated_wav_is_flagged_and_its_missing_seconds_counted(tmp_path, policy):
    """Header says 3 s, 0.5 s of data are there: once accepted as plain ok."""
    from conftest import tone, write

    from cry_diffusion.segment import SegmentParams, segment_manifest

    full = write(tmp_path / "full.wav", tone(440, 3.0, 16000), 16000)
    (tmp_path / "cut.wav").write_bytes(full.read_bytes()[: 44 + 16000])  # 0.5 s of 16-bit mono
    full.unlink()
    m = ingest.build_manifest(tmp_path, ingest.IngestParams(truncated=policy))
    row = m.set_index("relpath").loc["cut.wav"]
    assert row["reason"].startswith("truncated: the header promises 3.000 s, 0.500 s are there")
    assert row["status"] == ("ok" if policy == "keep" else "rejected") and row["missing_s"] == pytest.approx(2.5)
    _, summary = segment_manifest(m, SegmentParams(seconds=0.25), tmp_path / "s.npy")
    assert summary["seconds_truncated"] == pytest.approx(2.5)


@pytest.mark.parametrize("policy", ["reject", "same_side"])
def test_re_encoded_copies_are_caught_by_content(tmp_path, policy):
    """The same cry as WAV, FLAC, a 22.05 kHz resample and Ogg Vorbis: different bytes, the same audio.

    Once only byte-identical files were caught, and with split_seed 1 a WAV was held out while its FLAC trained.
    """
    import soundfile as sf
    import soxr

    from cry_diffusion.segment import SegmentParams, segment_manifest
    from cry_diffusion.synth_cry import synthesize_cry

    cry = synthesize_cry("pain", 3.0, 44100, seed=3)
    other = synthesize_cry("pain", 3.0, 44100, seed=4)  # a different cry of the same length and category
    sf.write(tmp_path / "a.wav", cry, 44100, subtype="PCM_16")
    sf.write(tmp_path / "b.flac", cry, 44100)
    sf.write(tmp_path / "c.wav", soxr.resample(cry, 44100, 22050), 22050, subtype="PCM_16")
    sf.write(tmp_path / "d.ogg", cry, 44100, format="OGG", subtype="VORBIS")
    sf.write(tmp_path / "e.wav", other, 44100, subtype="PCM_16")
    m = ingest.build_manifest(ingest.Source(str(tmp_path), category_from="none"), ingest.IngestParams(duplicates=policy))
    v = verdicts(m)
    assert v["a.wav"] == ("ok", "") and v["e.wav"] == ("ok", "")
    for copy in ("b.flac", "c.wav", "d.ogg"):
        if policy == "reject":
            assert v[copy] == ("rejected", "duplicate: the same audio as a.wav, in another encoding"), v[copy]
        else:
            assert v[copy] == ("ok", "the same audio as a.wav: kept on its side"), v[copy]
    if policy == "same_side":
        for seed in range(4):  # whatever the split draws, all four copies share a side
            table, _ = segment_manifest(m, SegmentParams(seconds=1.0, heldout_fraction=0.5, split_seed=seed),
                                        tmp_path / "s.npy")  # fmt: skip
            sides = table.groupby(table["path"].map(lambda p: p.rsplit("/", 1)[1]))["split"].first()
            assert sides[["a.wav", "b.flac", "c.wav", "d.ogg"]].nunique() == 1


def test_distinct_cries_are_not_taken_for_copies(tmp_path):
    """The false-positive side of the content check: the embedded corpus's 60 distinct cries, none a duplicate."""
    from cry_diffusion import synth

    synth.write_corpus(tmp_path, clips_per_category=12)
    files = ingest.build_manifest(tmp_path).query("row == 'file'")
    assert len(files) == 60 and (files["status"] == "ok").all(), files[files["status"] != "ok"][["relpath", "reason"]]


def test_the_duplicate_pre_filter_keeps_shifted_copies():
    """Among 300 distinct cries of one duration, a copy delayed by a frame (a codec's delay) is found, and only it."""
    import numpy as np

    from cry_diffusion import fingerprint
    from cry_diffusion.synth_cry import synthesize_cry

    prints = [fingerprint.fingerprint(synthesize_cry(("deaf", "hunger", "pain")[k % 3], 2.0, 16000, seed=k), 16000)
              for k in range(300)]  # fmt: skip
    delayed = np.concatenate([np.zeros(800, np.float32), synthesize_cry("pain", 2.0, 16000, seed=5)])[:32000]
    items = [(f"cry{k}", 2.0, fp) for k, fp in enumerate(prints)] + [("delayed", 2.0, fingerprint.fingerprint(delayed, 16000))]
    assert fingerprint.duplicates(items) == {"delayed": "cry5"}
