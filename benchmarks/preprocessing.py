"""Preprocessing throughput: hours of audio ingested, resampled, segmented and turned into mels per minute.

    python benchmarks/preprocessing.py                   # a 1-hour corpus, 1 and 2 cores, and a 6-hour file
    python benchmarks/preprocessing.py --hours 4 --cores 1 2 4 --no-long
    taskset -c 1 python benchmarks/preprocessing.py --cores 1 --no-long   # one core, whatever else the machine runs

Our path is the pipeline's own: ingest.build_manifest (decode, checks, SHA-256, a
fingerprint for re-encoded duplicates) -> segment.segment_manifest (streamed soxr
resampling, 1 s segments into one .npy, written atomically) -> mel.log_mel over that
file into another. The naive baseline, one process: librosa.load(sr=16000) and
librosa.feature.melspectrogram per file, kept in memory. The corpus is written first:
WAV files of 30 s at 44.1 and 22.05 kHz, a third of them stereo, so resampling and
down-mixing run. Each side's one-time start-up (imports, librosa's compiled kernels,
the mel filters) is left out of its time. The two paths alternate for --rounds rounds in
one process, and the table gives median times and the median of the rounds' ratios:
shared machines swing by more than the difference being measured. The 6-hour file's
peak memory is measured in a fresh process.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

import _bench

FILE_SECONDS = 30
RATES = (44100, 22050)

LONG_RUN = """
import sys, threading, time, numpy as np
from cry_diffusion import ingest, mel, segment
import librosa, torch, soxr  # loaded before the baseline reading, as the pipeline loads them anyway

def anon_mb():  # private memory: what the process needs (memory-mapped files' pages are the kernel's cache)
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("RssAnon")) / 1024

peak, done = [anon_mb()], False
def watch():
    while not done:
        peak.append(anon_mb()); time.sleep(0.01)
threading.Thread(target=watch, daemon=True).start()
manifest = ingest.build_manifest(sys.argv[1])
segment.segment_manifest(manifest, segment.SegmentParams(seconds=1.0), sys.argv[2])
segments = np.load(sys.argv[2], mmap_mode="r")
mel.log_mel(segments, out=np.lib.format.open_memmap(sys.argv[2] + ".mels.npy", "w+", np.float32, mel.mel_shape(segments.shape)))
done = True
print(peak[0], max(peak))
"""


def write_corpus(root: Path, hours: float) -> float:
    """Distinct 30 s files (each a different rotation of a cry), totalling `hours`; returns the seconds written."""
    from cry_diffusion.synth_cry import synthesize_cry
    from cry_diffusion.synth_params import CATEGORIES

    base = {(c, r): synthesize_cry(c, FILE_SECONDS, r, seed=k) for k, c in enumerate(CATEGORIES) for r in RATES}
    n = int(np.ceil(hours * 3600 / FILE_SECONDS))
    for k in range(n):
        cat, rate = CATEGORIES[k % len(CATEGORIES)], RATES[(k // len(CATEGORIES)) % len(RATES)]
        x = np.roll(base[cat, rate], 997 * k)  # a rotation per file: no two files alike (duplicates are rejected)
        if k % 3 == 0:
            x = np.stack([x, 0.8 * x], axis=1)
        path = root / cat / f"{cat}_{k:04d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, x, rate, subtype="PCM_16")
    return n * FILE_SECONDS


def ours(root: Path, scratch: Path, cores: int) -> dict:
    import torch

    from cry_diffusion import ingest, mel, segment

    torch.set_num_threads(cores)
    mel.log_mel(np.zeros((1, 16000), np.float32))  # untimed, as the baseline's first call: librosa's import, the filters
    t = {"start": time.perf_counter()}
    manifest = ingest.build_manifest(root, workers=cores)
    t["ingest"] = time.perf_counter()
    npy = scratch / f"segments-{cores}.npy"
    segment.segment_manifest(manifest, segment.SegmentParams(seconds=1.0), npy, workers=cores)
    t["segment"] = time.perf_counter()
    segments = np.load(npy, mmap_mode="r")
    mel.log_mel(segments, out=np.lib.format.open_memmap(scratch / f"mels-{cores}.npy", "w+", np.float32,
                                                         mel.mel_shape(segments.shape)))
    t["mel"] = time.perf_counter()
    return {"ingest": t["ingest"] - t["start"], "segment": t["segment"] - t["ingest"], "mel": t["mel"] - t["segment"],
            "total": t["mel"] - t["start"], "ok": int((manifest["status"] == "ok").sum()), "segments": len(segments)}


def naive(root: Path) -> dict:
    import librosa

    files = sorted(root.rglob("*.wav"))

    def one(path):
        y, _ = librosa.load(path, sr=16000)
        librosa.feature.melspectrogram(y=y, sr=16000, n_fft=512, win_length=400, hop_length=160, n_mels=80)

    one(files[0])  # untimed: librosa's first call compiles its numba kernels (tens of seconds)
    t0 = time.perf_counter()
    for path in files:
        one(path)
    return {"total": time.perf_counter() - t0, "ok": len(files)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hours", type=float, default=1.0, help="size of the generated corpus")
    ap.add_argument("--cores", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the naive loop and ours, alternating")
    ap.add_argument("--long-hours", type=float, default=6.0, help="length of the single long file")
    ap.add_argument("--no-long", action="store_true", help="skip the long-file memory measurement")
    ap.add_argument("--scratch", help="folder for the corpus and outputs (default: a temporary one)")
    args = ap.parse_args()
    scratch = Path(args.scratch or tempfile.mkdtemp(prefix="cry-preprocessing-"))
    try:
        t0 = time.perf_counter()
        seconds = write_corpus(scratch / "corpus", args.hours)
        print(f"machine: {_bench.machine(_bench.torch.device('cpu'))}")
        print(f"corpus: {seconds / 3600:.2f} h in {int(seconds // FILE_SECONDS)} WAV files of {FILE_SECONDS} s "
              f"at {' and '.join(map(str, RATES))} Hz, a third stereo (written in {time.perf_counter() - t0:.0f} s)\n")
        bases, runs = [], {cores: [] for cores in args.cores}
        for _ in range(args.rounds):
            bases.append(naive(scratch / "corpus"))
            for cores in args.cores:
                runs[cores].append(ours(scratch / "corpus", scratch, cores))
                assert runs[cores][-1]["ok"] == bases[-1]["ok"], f"{runs[cores][-1]['ok']} files ok of {bases[-1]['ok']}"
        base = statistics.median(b["total"] for b in bases)
        rows = [["naive librosa", 1, "", "", "", base, seconds / 3600 / (base / 60), 1.0]]
        for cores, rs in runs.items():
            median = {k: statistics.median(r[k] for r in rs) for k in ("ingest", "segment", "mel", "total")}
            ratio = statistics.median(b["total"] / r["total"] for b, r in zip(bases, rs))
            rows.append(["ours", cores, median["ingest"], median["segment"], median["mel"], median["total"],
                         seconds / 3600 / (median["total"] / 60), ratio])
        print(_bench.table(rows, ["path", "cores", "ingest s", "segment s", "mel s", "total s", "h/min", "x naive"]))
        each = "; ".join(f"{cores} cores: " + ", ".join(f"{b['total'] / r['total']:.2f}" for b, r in zip(bases, rs))
                         for cores, rs in runs.items())
        print(f"(medians of {args.rounds} rounds; x naive: the median of the rounds' ratios, which were {each})")
        if not args.no_long:
            long = scratch / "long" / "long.wav"
            long.parent.mkdir()
            n = int(args.long_hours * 60)
            minute = (0.3 * np.tanh(np.random.default_rng(0).standard_normal(60 * 16000))).astype(np.float32)
            with sf.SoundFile(long, "w", samplerate=16000, channels=1, subtype="PCM_16") as f:
                for k in range(n):
                    f.write(np.roll(minute, k))
            t1 = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", LONG_RUN, str(long.parent), str(scratch / "long.npy")],
                                 capture_output=True, text=True, check=True)
            start, peak = map(float, out.stdout.split()[-2:])
            print(f"\none {args.long_hours:g}-hour 16 kHz file, ingest + segment + mels in a fresh process "
                  f"({time.perf_counter() - t1:.0f} s): peak private memory {peak:.0f} MB, {peak - start:.0f} MB above "
                  f"the {start:.0f} MB of Python with numpy, torch and librosa loaded (polled every 10 ms); "
                  f"its audio decoded whole would take {n * 60 * 16000 * 4 / 2**20:.0f} MB")
    finally:
        if not args.scratch:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
