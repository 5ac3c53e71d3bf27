"""Small corpora laid out like the real ones (which we can't ship), for the adapter, hostile and workflow tests.

Each builder writes under `root` and returns what a test needs to check the
result exactly: the known cry regions, the recordings, the expected labels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from conftest import write

CHILLANTO_CATEGORIES = ("asphyxia", "deaf", "hunger", "normal", "pain")


def cry(seconds: float, rate: int, seed: int = 0, amplitude: float = 0.3) -> np.ndarray:
    """Noise-like audio: no two offsets look alike, so a segment cut one sample off shows."""
    rng = np.random.default_rng(seed)
    return (amplitude * np.tanh(rng.standard_normal(int(round(seconds * rate))))).astype(np.float32)


def encode(path: Path, fmt: str, codec: str, rate: int, signal: np.ndarray) -> Path:
    """Write mono `signal` with PyAV's encoders: containers soundfile can't read (3GP/AMR-NB, CAF/IMA ADPCM, M4A/AAC)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.asarray(signal, np.float32)[None, :], format="flt", layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return path


def chillanto(root: Path, per_category: int = 2) -> Path:
    """Baby Chillanto: 1 s clips in one folder per category, at the low rates it was recorded at."""
    for c, category in enumerate(CHILLANTO_CATEGORIES):
        for k in range(per_category):
            rate = (8000, 11025, 16000)[k % 3]
            write(root / category / f"{category[:2]}{k:03d}.wav", cry(1.0, rate, seed=10 * c + k), rate)
    return root


# deBarbaro-style long recording: (start s, end s, label) rows of its annotation table.
LONG_REGIONS = [(1.0, 11.5, "cry"), (12.0, 20.0, "notcry"), (20.25, 23.5, "cry"), (25.0, 26.0, "cry"), (30.0, 40.0, "notcry")]


def debarbaro_long(root: Path, recordings: int = 2, seconds: float = 40.0) -> tuple[Path, dict[str, np.ndarray]]:
    """Long 16 kHz float recordings, each with a start,end,label CSV of the same stem beside it."""
    signals = {}
    for k in range(recordings):
        name = f"P{k + 1:02d}"
        signals[name] = cry(seconds, 16000, seed=100 + k)
        write(root / f"{name}.wav", signals[name], 16000, subtype="FLOAT")
        rows = ["start,end,label", *(f"{s},{e},{label}" for s, e, label in LONG_REGIONS)]
        (root / f"{name}.csv").write_text("\n".join(rows) + "\n")
    return root, signals


def debarbaro_precut(root: Path, recordings: int = 5, seconds: float = 12.0, hop: float = 1.0) -> Path:
    """The distributed deBarbaro cry set: 5 s windows, 4 s overlap, cry and as many non-cry, named by recording."""
    for k in range(recordings):
        name = f"P{k + 1:02d}"
        signal = cry(seconds, 16000, seed=200 + k)
        for w in range(int((seconds - 5) / hop) + 1):
            label = "cry" if w % 2 == 0 else "notcry"
            start = int(w * hop * 16000)
            write(root / label / f"{name}_{w:03d}.wav", signal[start : start + 5 * 16000], 16000)
    return root


PHONE_PATTERN = r"-(?P<category>[a-z]{2})\.(3gp|caf|m4a)$"


def phone_app(root: Path) -> Path:
    """A donate-a-cry style app corpus: the reason in the file name, 3GP/AMR-NB at 8 kHz and CAF/IMA ADPCM."""
    encode(root / "0c8f14a9-1431029137286-1.7-m-26-hu.3gp", "3gp", "amr_nb", 8000, cry(2.2, 8000, seed=1, amplitude=0.2))
    encode(root / "1d2e3f4a-1431029137999-1.7-f-04-bp.caf", "caf", "adpcm_ima_qt", 16000, cry(2.6, 16000, seed=2))
    encode(root / "sub dir" / "2a3b-1431029138000-1.7-m-72-ti.caf", "caf", "adpcm_ima_qt", 16000, cry(1.4, 16000, seed=3))
    broken = (root / "0c8f14a9-1431029137286-1.7-m-26-hu.3gp").read_bytes()
    (root / "9f9f-1431029139000-1.7-m-04-dc.3gp").write_bytes(broken[: len(broken) // 2])  # upload cut off mid-way
    return root
