import numpy as np
import pandas as pd
import pytest
from conftest import tone, write

from cry_diffusion import SAMPLE_RATE, ingest, segment


@pytest.mark.parametrize(
    "seconds, remainder, frac, expect_rows, expect_pad, expect_drop",
    [
        (2.7, "pad", 0.5, 3, 0.3, 0.0),  # 0.7 s left >= 0.5: padded
        (2.3, "pad", 0.5, 2, 0.0, 0.3),  # 0.3 s left < 0.5: dropped
        (2.7, "drop", 0.5, 2, 0.0, 0.7),
        (3.0, "pad", 0.5, 3, 0.0, 0.0),
        (0.6, "pad", 0.5, 1, 0.4, 0.0),
        (0.4, "pad", 0.5, 0, 0.0, 0.4),
    ],
)
def test_cut_counts_and_padding(seconds, remainder, frac, expect_rows, expect_pad, expect_drop):
    x = np.arange(int(seconds * SAMPLE_RATE), dtype=np.float32) + 1
    rows, padded, dropped = segment.cut(x, segment.SegmentParams(seconds=1.0, remainder=remainder, pad_min_fraction=frac))
    assert rows.shape == (expect_rows, SAMPLE_RATE)
    assert padded == round(expect_pad * SAMPLE_RATE) and dropped == round(expect_drop * SAMPLE_RATE)
    kept = len(x) - dropped
    assert np.array_equal(rows.ravel()[:kept], x[:kept])  # in order, nothing shifted or lost
    if padded:
        assert np.all(rows[-1, -padded:] == 0) and rows[-1, -padded - 1] != 0


def make_corpus(root, n_per_cat=5):
    for cat, f0 in (("pain", 500), ("hunger", 350)):
        for k in range(n_per_cat):
            write(root / cat / f"{cat}{k}.wav", tone(f0 + 10 * k, 2.6 + 0.1 * k, 44100), 44100)
    return root


def test_segments_pack_reconcile_and_split_by_recording(tmp_path):
    root = make_corpus(tmp_path / "c")
    manifest = ingest.build_manifest(root)
    params = segment.SegmentParams(seconds=1.0, heldout_fraction=0.4)
    table, summary = segment.segment_manifest(manifest, params, tmp_path / "s.npy", workers=2)
    packed = np.load(tmp_path / "s.npy", mmap_mode="r")
    assert packed.shape == (len(table), SAMPLE_RATE) and packed.dtype == np.float32
    # 2.6..3.0 s files: 2 full + padded 0.6..0.9 (3 rows), or 3 rows when exactly 3.0 s.
    assert summary["segments"] == len(table) == 30
    assert abs(summary["unexplained_seconds"]) < 1e-3
    assert summary["seconds_in"] == pytest.approx(summary["seconds_in_segments"] + summary["seconds_dropped_remainder"], abs=1e-3)
    # Rows are in manifest order with the offsets they came from.
    first = table[table["path"].str.endswith("hunger0.wav")]
    assert first["start_s"].tolist() == [0.0, 1.0, 2.0]
    x = packed[first["index"].iloc[1]]
    assert np.abs(x).max() == pytest.approx(0.5, abs=0.01)
    # Each recording on one side only; every category has both sides.
    assert (table.groupby("path")["split"].nunique() == 1).all()
    sides = table.groupby("category")["split"].unique()
    assert all(set(s) == {"train", "heldout"} for s in sides)
    held = table[table["split"] == "heldout"]["path"].nunique()
    assert held == 4  # 0.4 of 5 recordings per category, 2 categories


def test_split_is_stable_and_seeded():
    groups = pd.Series([f"rec{i // 3}" for i in range(60)])
    cats = pd.Series(["a"] * 30 + ["b"] * 30)
    p = segment.SegmentParams(heldout_fraction=0.3)
    a = segment.assign_split(groups, cats, p)
    assert a.equals(segment.assign_split(groups, cats, p))
    assert not a.equals(segment.assign_split(groups, cats, segment.SegmentParams(heldout_fraction=0.3, split_seed=1)))
    assert (pd.DataFrame({"g": groups, "s": a}).groupby("g")["s"].nunique() == 1).all()


def test_rejected_files_do_not_reach_segments(bad_corpus, tmp_path):
    manifest = ingest.build_manifest(bad_corpus)
    table, summary = segment.segment_manifest(manifest, segment.SegmentParams(), tmp_path / "s.npy")
    assert set(table["path"]) == set(manifest.loc[manifest.status == "ok", "path"])
    assert summary["files_rejected"] == 8 and summary["files_skipped"] == 1


def test_cutting_a_stream_is_blind_to_block_boundaries():
    """Spans cut from odd-sized blocks give exactly the slices of the whole signal, remainders and all."""
    import io

    rng = np.random.default_rng(0)
    x = rng.standard_normal(10 * SAMPLE_RATE).astype(np.float32)
    edges = [(100, 40_100), (40_100, 41_000), (50_000, 90_000), (150_000, 170_000), (175_000, 180_000)]
    spans = [segment.Span(s, e, "c", s / SAMPLE_RATE, e / SAMPLE_RATE) for s, e in edges]
    params = segment.SegmentParams(seconds=0.5, remainder="pad", pad_min_fraction=0.25)
    cuts = np.cumsum(rng.integers(1, 30_000, 20))
    sink = io.BytesIO()
    done = segment.cut_stream(np.split(x, cuts[cuts < len(x)]), spans, params, sink)
    rows = np.frombuffer(sink.getvalue(), np.float32).reshape(-1, params.samples)
    assert len(rows) == len(done.segments)
    for row, (i, first, padded) in zip(rows, done.segments):
        n = params.samples - padded
        assert np.array_equal(row[:n], x[first : first + n]) and not row[n:].any()
        assert spans[i].start <= first and first + n <= spans[i].end
    # 40 000 samples = 5 segments; 900 < 2000 dropped; 5 again; the signal ends at 160 000: 1 + 1 padded, 10 000 missing.
    assert [sum(k == i for k, _, _ in done.segments) for i in range(5)] == [5, 0, 5, 2, 0]
    assert done.dropped == [0, 900, 0, 0, 0] and done.missing == [0, 0, 0, 10_000, 5_000]


def test_workers_write_the_same_packed_array(tmp_path):
    manifest = ingest.build_manifest(make_corpus(tmp_path / "c", n_per_cat=3))
    one, _ = segment.segment_manifest(manifest, segment.SegmentParams(), tmp_path / "one.npy", workers=1)
    two, _ = segment.segment_manifest(manifest, segment.SegmentParams(), tmp_path / "two.npy", workers=2)
    assert one.equals(two) and np.array_equal(np.load(tmp_path / "one.npy"), np.load(tmp_path / "two.npy"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c", "one.npy", "two.npy"]  # no part files left behind
