"""Hostile input: files and tables made broken on purpose. Each gets a manifest row that says why; nothing crashes."""

import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from conftest import tone, write
from corpora import cry, encode

from cry_diffusion import ingest, segment
from cry_diffusion.segment import SegmentParams


def wav_with(path, **fields):
    """A valid 16-bit WAV, then header fields overwritten: fmt tag, channels or rate."""
    write(path, tone(440, 1.0, 16000), 16000)
    data = bytearray(path.read_bytes())
    offsets = {"format_tag": (20, "<H"), "channels": (22, "<H"), "rate": (24, "<I"), "byte_rate": (28, "<I")}
    for name, value in fields.items():
        at, fmt = offsets[name]
        data[at : at + struct.calcsize(fmt)] = struct.pack(fmt, value)
    path.write_bytes(data)
    return path


@pytest.fixture
def hostile(tmp_path):
    root = tmp_path / "hostile"
    good = write(root / "good.wav", tone(440, 2.0, 16000), 16000)
    write(root / "bébé pleure (1).wav", tone(500, 1.5, 22050), 22050)
    write(root / "泣き声 2.flac", tone(800, 1.5, 16000, channels=2), 16000)  # not 520 Hz: steady tones that close fingerprint alike
    (root / "truncated.wav").write_bytes(good.read_bytes()[:20])
    (root / "zero.wav").write_bytes(b"")
    (root / "notes.mp3").write_text("not audio, whatever the extension says\n" * 10)
    inf = tone(440, 1.0, 16000)
    inf[500] = np.inf
    write(root / "inf.wav", inf, 16000, subtype="FLOAT")
    wav_with(root / "rate0.wav", rate=0, byte_rate=0)
    wav_with(root / "channels0.wav", channels=0)
    wav_with(root / "codec.wav", format_tag=0x1234)
    amr = encode(root / "phone" / "ok.3gp", "3gp", "amr_nb", 8000, cry(1.5, 8000, seed=1))
    (root / "phone" / "cut_off.3gp").write_bytes(amr.read_bytes()[: amr.stat().st_size // 2])
    caf = encode(root / "phone" / "ok.caf", "caf", "adpcm_ima_qt", 16000, cry(1.5, 16000, seed=2)).read_bytes()
    (root / "phone" / "garbled.caf").write_bytes(caf[:2000] + b"\xff" * 300 + caf[2300:])
    os.symlink("loop.wav", root / "loop.wav")  # a link to itself
    os.symlink("nowhere.wav", root / "dangling.wav")
    os.symlink("good.wav", root / "alias.wav")
    os.symlink("..", root / "phone" / "up")  # a folder loop: phone/up/phone/up/...
    return root


def test_every_hostile_file_gets_a_reason_and_nothing_else_is_lost(hostile, tmp_path):
    m = ingest.build_manifest(hostile, workers=2)
    found = {os.path.relpath(os.path.join(d, n), hostile) for d, dirs, files in os.walk(hostile) for n in files + dirs}
    assert set(m["relpath"]) == found - {"phone"}  # every entry but the plain folder itself
    v = {r.relpath: (r.status, r.reason) for r in m.itertuples()}
    expected = {
        "good.wav": ("ok", ""),
        "bébé pleure (1).wav": ("ok", ""),
        "泣き声 2.flac": ("ok", "down-mixed from 2 channels"),
        "phone/ok.3gp": ("ok", "band-limited source, kept"),
        "phone/ok.caf": ("ok", ""),
        "truncated.wav": ("rejected", "unreadable: WAV (RIFF), which neither decoder opens"),
        "zero.wav": ("rejected", "empty: zero-byte file"),
        "notes.mp3": ("rejected", "unreadable: unknown format, which neither decoder opens"),
        "inf.wav": ("rejected", "non-finite samples: 1 NaN/Inf"),
        "rate0.wav": ("rejected", "unreadable: WAV (RIFF)"),
        "channels0.wav": ("rejected", "unreadable: header gives 0 channels (wav/pcm_s16le)"),
        "codec.wav": ("rejected", "unreadable: WAV (RIFF), which neither decoder opens"),
        "phone/cut_off.3gp": ("rejected", "unreadable: MP4/3GP (brand '3gp4')"),
        "phone/garbled.caf": ("rejected", "unreadable: caf/adpcm_ima_qt"),
        "loop.wav": ("rejected", "unreadable: Too many levels of symbolic links"),
        "dangling.wav": ("rejected", "unreadable: No such file or directory"),
        "alias.wav": ("rejected", "duplicate: same content as"),
        "phone/up": ("skipped", "link to a folder"),
    }
    for name, (status, reason) in expected.items():
        assert v[name][0] == status and v[name][1].startswith(reason), (name, v[name])
    assert "codec FFmpeg can't decode" in v["codec.wav"][1]  # the container is named even when the codec isn't known

    table, summary = segment.segment_manifest(m, SegmentParams(seconds=0.5), tmp_path / "s.npy", workers=2)
    assert set(table["path"].map(lambda p: os.path.relpath(p, hostile))) == {r for r, (s, _) in v.items() if s == "ok"}
    assert abs(summary["unexplained_seconds"]) <= summary["reconcile_tolerance_seconds"]


def test_annotation_tables_with_every_kind_of_mistake(tmp_path):
    root = tmp_path / "c"
    rec = cry(10.0, 16000, seed=3)
    write(root / "rec.wav", rec, 16000, subtype="FLOAT")
    (root / "rec.csv").write_text(
        "start,end,label\n"
        "-1,2,cry\n"  # line 2
        "5,3,cry\n"
        "8,12,cry\n"  # 2 s past the end
        "9.5,10.05,cry\n"  # 0.05 s past: within the tolerance
        "11,12,cry\n"
        "abc,2,cry\n"
        "2,2,cry\n"
        "3,4,cry\n"  # line 9: the one good row
        "6,7\n"  # line 10: no label cell
    )
    write(root / "other.wav", cry(3.0, 16000, seed=4), 16000)
    (root / "other.csv").write_text("onset,offset,label\n0,1,cry\n")
    write(root / "lone.wav", cry(3.0, 16000, seed=5), 16000)
    write(root / "garbage.wav", cry(3.0, 16000, seed=6), 16000)
    (root / "garbage.csv").write_bytes(bytes(range(256)) * 4)
    (root / "empty.wav").write_bytes(b"")
    (root / "empty.csv").write_text("start,end,label\n0,1,cry\n")

    source = ingest.Source(str(root), kind="annotated", cry_labels=["cry"])
    m = ingest.build_manifest(source).set_index("relpath")
    reasons = {k: m.loc[f"rec.csv:{k}", "reason"] for k in range(2, 11)}
    assert reasons[2].startswith("negative time")
    assert reasons[3].startswith("reversed: ends at 3 s, before its start at 5 s")
    assert reasons[4].startswith("outside the recording") and reasons[6].startswith("outside the recording")
    assert m.loc["rec.csv:5", "status"] == "ok" and "past the recording's end: cut at the end" in reasons[5]
    assert reasons[7].startswith("unparseable: start 'abc'") and reasons[8].startswith("empty")
    assert m.loc["rec.csv:9", ["status", "reason"]].tolist() == ["ok", ""]
    assert reasons[10].startswith("not a cry label")
    assert m.loc["other.csv", "status"] == "rejected" and "missing column(s) 'start', 'end'" in m.loc["other.csv", "reason"]
    assert m.loc["other.wav", "status"] == "skipped" and "other.csv rejected" in m.loc["other.wav", "reason"]
    assert m.loc["lone.wav", "reason"] == "no annotation table: looked for lone.csv"
    assert m.loc["garbage.csv", "reason"].startswith("unreadable table")
    assert m.loc["empty.csv:2", "reason"] == "recording rejected: empty: zero-byte file"

    table, summary = segment.segment_manifest(m.reset_index(), SegmentParams(seconds=0.5), tmp_path / "s.npy", regions=True)
    assert table["start_s"].tolist() == [3.0, 3.5, 9.5]
    assert summary["seconds_in"] == pytest.approx(1.55) and summary["seconds_past_end"] == pytest.approx(0.05)
    assert abs(summary["unexplained_seconds"]) <= summary["reconcile_tolerance_seconds"]


SIX_HOURS = 6 * 3600
MEASURE = r"""
import json, re, sys
from cry_diffusion import ingest, segment
manifest = ingest.build_manifest(sys.argv[1])
table, summary = segment.segment_manifest(manifest, segment.SegmentParams(seconds=1.0), sys.argv[2])
# VmHWM is this process image's own peak; getrusage's ru_maxrss would inherit the forking parent's (pytest's) peak.
peak_kb = int(re.search(r"VmHWM:\s+(\d+)", open("/proc/self/status").read()).group(1))
print(json.dumps({"peak_mb": peak_kb / 1024, "segments": summary["segments"], "unexplained": summary["unexplained_seconds"]}))
"""


@pytest.mark.slow
def test_a_six_hour_recording_streams_in_bounded_memory(tmp_path):
    """Ingest and segment a 6-hour 16 kHz file in a fresh process; its peak RSS must stay far below the audio's size."""
    path = tmp_path / "corpus" / "six_hours.wav"
    path.parent.mkdir()
    minute = (0.3 * np.tanh(np.random.default_rng(0).standard_normal(60 * 16000))).astype(np.float32)
    with sf.SoundFile(str(path), "w", samplerate=16000, channels=1, subtype="PCM_16") as f:
        for k in range(SIX_HOURS // 60):
            f.write(np.roll(minute, k))
    decoded_mb = SIX_HOURS * 16000 * 4 / 2**20  # float32 mono: what loading it whole would cost
    out = tmp_path / "s.npy"
    try:
        proc = subprocess.run([sys.executable, "-c", MEASURE, str(path.parent), str(out)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-3000:]
        result = json.loads(proc.stdout)
        print(f"6-hour file: peak RSS {result['peak_mb']:.0f} MB against {decoded_mb:.0f} MB decoded")
        assert result["segments"] == SIX_HOURS and abs(result["unexplained"]) < 1e-3
        assert np.load(out, mmap_mode="r").shape == (SIX_HOURS, 16000)
        assert result["peak_mb"] < decoded_mb / 5
    finally:
        path.unlink(missing_ok=True)
        out.unlink(missing_ok=True)
