"""The three adapters on corpora laid out like Baby Chillanto, deBarbaro and a phone-app corpus."""

import numpy as np
import pandas as pd
import pytest
from conftest import tone, write
from corpora import CHILLANTO_CATEGORIES, PHONE_PATTERN, chillanto, cry, debarbaro_long, debarbaro_precut, phone_app

from cry_diffusion import SAMPLE_RATE, ingest, segment
from cry_diffusion.annotations import TableFormat
from cry_diffusion.segment import SegmentParams


def run(source, params, tmp_path, ingest_params=ingest.IngestParams()):
    manifest = ingest.build_manifest(source, ingest_params)
    table, summary = segment.segment_manifest(manifest, params, tmp_path / "s.npy", regions=source.kind != "folder")
    return manifest, table, summary, np.load(tmp_path / "s.npy", mmap_mode="r")


def reconciles(summary):
    return abs(summary["unexplained_seconds"]) <= summary["reconcile_tolerance_seconds"]


def one_side_per_recording(table):
    return (table.groupby("recording")["split"].nunique() == 1).all()


def by_relpath(manifest):
    return manifest.set_index("relpath")


def test_chillanto_category_folders(tmp_path):
    root = chillanto(tmp_path / "chillanto", per_category=3)
    m, table, summary, packed = run(ingest.Source(str(root)), SegmentParams(seconds=1.0, heldout_fraction=0.34), tmp_path)
    assert (m["status"] == "ok").all() and set(m["category"]) == set(CHILLANTO_CATEGORIES)
    assert m["band_limited"].sum() == 10  # the 8 and 11.025 kHz clips are flagged, the 16 kHz ones not
    assert len(table) == packed.shape[0] == 15 and reconciles(summary)
    assert summary["seconds_in_band_limited"] == pytest.approx(10.0, abs=1e-3)
    assert one_side_per_recording(table)
    assert all(set(sides) == {"train", "heldout"} for sides in table.groupby("category")["split"].unique())


def test_debarbaro_long_recordings_cut_only_inside_cry_regions(tmp_path):
    root, signals = debarbaro_long(tmp_path / "deb")
    source = ingest.Source(str(root), kind="annotated", cry_labels=["cry"])
    params = SegmentParams(seconds=5.0, remainder="pad", pad_min_fraction=0.5, heldout_fraction=0.5)
    m, table, summary, packed = run(source, params, tmp_path)

    rows = m.groupby("row")["status"].value_counts().to_dict()
    assert rows == {("file", "ok"): 2, ("table", "ok"): 2, ("region", "ok"): 6, ("region", "skipped"): 4}
    r = by_relpath(m)
    assert r.loc["P01.csv:3", "reason"].startswith("not a cry label") and r.loc["P01.csv:3", "label"] == "notcry"
    assert (r.loc["P01.csv:2", "start_s"], r.loc["P01.csv:2", "end_s"]) == (1.0, 11.5)

    # 10.5 s -> 2 segments + 0.5 s dropped; 3.25 s -> 1 padded (>= 2.5 s); 1 s -> dropped.
    for name, signal in signals.items():
        mine = table[table["path"].str.endswith(f"{name}.wav")]
        assert mine["start_s"].tolist() == [1.0, 6.0, 20.25]
        assert mine["padded_samples"].tolist() == [0, 0, int(1.75 * SAMPLE_RATE)]
        assert mine["region_start_s"].tolist() == [1.0, 1.0, 20.25]
        for row in mine.itertuples():
            first, n = round(row.start_s * SAMPLE_RATE), params.samples - row.padded_samples
            assert np.array_equal(packed[row.index][:n], signal[first : first + n])  # to the sample
            assert not packed[row.index][n:].any()
    assert summary["cut_from"] == "regions"
    assert summary["seconds_in"] == pytest.approx(2 * (10.5 + 3.25 + 1.0))
    assert summary["seconds_in_segments"] == pytest.approx(2 * 13.25)
    assert summary["seconds_dropped_remainder"] == pytest.approx(2 * 1.5)
    assert summary["seconds_skipped"] == pytest.approx(2 * 18.0)
    assert reconciles(summary) and one_side_per_recording(table) and summary["recordings_heldout"] == 1


def test_annotation_tables_in_other_layouts(tmp_path):
    """Audacity label tracks (TSV, no header) in another folder, and millisecond tables with their own names."""
    root = tmp_path / "c"
    write(root / "audio" / "rec.flac", tone(450, 6.0, 44100, channels=2), 44100)
    (root / "labels").mkdir()
    (root / "labels" / "rec.txt").write_text("1.000000\t3.500000\tcry\n4.000000\t5.000000\tcry\n")
    table = TableFormat(columns={"start": 0, "end": 1, "label": 2}, sep="\t")
    source = ingest.Source(str(root), kind="annotated", annotations="labels/{stem}.txt", table=table)
    m, segs, summary, _ = run(source, SegmentParams(seconds=1.0, remainder="drop"), tmp_path)
    assert by_relpath(m).loc["labels/rec.txt:1", "status"] == "ok"
    assert segs["start_s"].tolist() == [1.0, 2.0, 4.0] and reconciles(summary)
    assert summary["seconds_dropped_remainder"] == pytest.approx(0.5)

    (root / "labels" / "rec.txt").unlink()
    (root / "audio" / "rec.csv").write_text("onset_ms;offset_ms;what\n1500;2500;cry\n")
    table = TableFormat(columns={"start": "onset_ms", "end": "offset_ms", "label": "what"}, time_unit="ms", sep=";")
    m, segs, _, _ = run(ingest.Source(str(root), kind="annotated", table=table), SegmentParams(seconds=1.0), tmp_path)
    assert by_relpath(m).loc["audio/rec.csv:2", ["start_s", "end_s"]].tolist() == [1.5, 2.5]
    assert segs["start_s"].tolist() == [1.5]


def test_debarbaro_precut_windows_keep_recordings_on_one_side(tmp_path):
    root = debarbaro_precut(tmp_path / "pre", recordings=5)
    kw = dict(category_from="folder", cry_labels=["cry"])
    grouped = ingest.Source(str(root), recording_from="filename", recording_pattern=r"^(?P<recording>P\d+)_", **kw)
    params = SegmentParams(seconds=5.0, heldout_fraction=0.4)
    m, table, summary, _ = run(grouped, params, tmp_path)
    assert (m.loc[m["category"] == "notcry", "status"] == "skipped").all()
    assert summary["files_ok"] == summary["files_skipped"] == 20 and len(table) == 20 and reconciles(summary)
    assert set(table["recording"]) == {f"P{k:02d}" for k in range(1, 6)}
    assert one_side_per_recording(table) and summary["recordings_heldout"] == 2
    # The grouping matters: window by window, overlapping windows of one recording would straddle the split.
    _, loose, _, _ = run(ingest.Source(str(root), **kw), params, tmp_path)
    assert (loose.groupby(loose["path"].str.extract(r"(P\d+)_")[0])["split"].nunique() > 1).any()


def test_phone_app_labels_from_file_names_and_phone_containers(tmp_path):
    root = phone_app(tmp_path / "phone app")
    source = ingest.Source(str(root), category_from="filename", category_pattern=PHONE_PATTERN)
    m, table, summary, _ = run(source, SegmentParams(seconds=1.0), tmp_path)
    r = by_relpath(m)
    hu = r.loc["0c8f14a9-1431029137286-1.7-m-26-hu.3gp"]
    assert (hu.status, hu.backend, hu.sample_rate, hu.band_limited, hu.category) == ("ok", "pyav", 8000, True, "hu")
    bp = r.loc["1d2e3f4a-1431029137999-1.7-f-04-bp.caf"]
    assert (bp.status, bp.container, bp.codec, bp.band_limited) == ("ok", "caf", "adpcm_ima_qt", False)
    assert r.loc["sub dir/2a3b-1431029138000-1.7-m-72-ti.caf", "category"] == "ti"
    cut_off = r.loc["9f9f-1431029139000-1.7-m-04-dc.3gp"]
    assert cut_off.status == "rejected" and "MP4/3GP" in cut_off.reason
    assert set(table["category"]) == {"hu", "bp", "ti"} and reconciles(summary)

    strict, *_ = run(source, SegmentParams(seconds=1.0), tmp_path, ingest.IngestParams(exclude_band_limited=True))
    assert by_relpath(strict).loc[hu.name, "reason"].startswith("band-limited")


def test_manifest_listing_cuts_what_it_lists(tmp_path):
    root = tmp_path / "listed"
    write(root / "a.wav", tone(300, 3.0, 22050, channels=2), 22050)
    write(root / "bébé crie 1.wav", cry(2.0, 16000, seed=5), 16000, subtype="FLOAT")
    write(root / "sub" / "b.wav", cry(6.0, 16000, seed=6), 16000, subtype="FLOAT")
    write(root / "not listed.wav", tone(300, 3.0, 16000), 16000)
    (root / "manifest.csv").write_text(
        "path,category,start,end\n"
        "a.wav,hunger,,\n"  # the whole file
        "bébé crie 1.wav,pain,0.5,\n"  # from 0.5 s to its end
        "sub/b.wav,pain,1,3\n"
        "sub/b.wav,,4,5.5\n"  # no category cell: the folder's
        "missing.wav,pain,,\n"
        "sub/b.wav,pain,5,2\n",
        encoding="utf-8",
    )
    m, table, summary, _ = run(ingest.Source(str(root), kind="manifest"), SegmentParams(seconds=1.0), tmp_path)
    r = by_relpath(m)
    assert "not listed.wav" not in r.index and r.loc["manifest.csv", "row"] == "table"
    assert r.loc["manifest.csv:6", "reason"].startswith("missing") and r.loc["manifest.csv:7", "reason"].startswith("reversed")
    assert r.loc["manifest.csv:5", "category"] == "sub"
    starts = table.groupby(table["path"].map(lambda p: p.split("listed/")[1]))["start_s"].apply(list).to_dict()
    assert starts == {"a.wav": [0.0, 1.0, 2.0], "bébé crie 1.wav": [0.5, 1.5], "sub/b.wav": [1.0, 2.0, 4.0, 5.0]}
    assert summary["regions_ok"] == 4 and summary["regions_rejected"] == 2 and reconciles(summary)


def test_overlapping_annotations_are_cut_once_and_reported(tmp_path):
    root = tmp_path / "c"
    signal = cry(10.0, 16000, seed=7)
    write(root / "r.wav", signal, 16000, subtype="FLOAT")
    (root / "r.csv").write_text("start,end,label\n1,3,cry\n2,4.5,cry\n4,5,fuss\n6,7,cry\n6,7,cry\n")
    source = ingest.Source(str(root), kind="annotated", category_from="label", cry_labels=["cry", "fuss"])
    m, table, summary, packed = run(source, SegmentParams(seconds=1.0), tmp_path)
    r = by_relpath(m)
    assert r.loc["r.csv:3", "status"] == "ok" and "overlaps line 2 by 1 s" in r.loc["r.csv:3", "reason"]
    assert r.loc["r.csv:4", "status"] == "rejected" and r.loc["r.csv:4", "reason"].startswith("overlap")
    assert "overlaps line 5 by 1 s" in r.loc["r.csv:6", "reason"]
    assert table["start_s"].tolist() == [1.0, 2.0, 3.0, 4.0, 6.0]  # 1-4.5 once (last padded), 6-7 once
    assert np.array_equal(packed[1], signal[32000:48000])
    assert summary["seconds_overlap"] == pytest.approx(2.0) and reconciles(summary)
    assert summary["seconds_rejected"] == pytest.approx(1.0)


def test_split_keeps_a_recording_of_two_categories_on_one_side():
    groups = pd.Series(["r1", "r1", "r1", "r2", "r3", "r4", "r5", "r6"])
    categories = pd.Series(["cry", "fuss", "cry", "cry", "fuss", "cry", "fuss", "cry"])
    for seed in range(10):
        split = segment.assign_split(groups, categories, SegmentParams(heldout_fraction=0.5, split_seed=seed))
        assert split[groups == "r1"].nunique() == 1
