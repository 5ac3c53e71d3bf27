"""Reading what people actually recorded, in blocks, at any rate and channel count.

soundfile (libsndfile) opens WAV, FLAC, OGG and MP3 quickly and exactly; PyAV,
which bundles FFmpeg's decoders, takes what it can't: phone-app corpora in 3GP
(AMR-NB) or CAF (IMA ADPCM), M4A/AAC, WebM/Opus. Both are read block by block so
that a six-hour recording never has to sit in memory whole.

    from cry_diffusion import audio
    info = audio.probe("cry.3gp")
    for block in audio.blocks("cry.3gp"):   # float32 [frames, channels]
        ...
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf
import soxr

from . import SAMPLE_RATE

BLOCK_SECONDS = 30.0  # large enough to amortise per-call overhead, small enough to bound memory
# 16-bit PCM is read as integers and scaled here: the same floats as libsndfile's own conversion (both divide by
# 2^15, exactly), and faster, on the format most recordings come in (benchmarks/preprocessing.py)
_PCM16_SCALE = np.float32(1 / 32768)


class DecodeError(Exception):
    """Neither soundfile nor PyAV could decode the file; the message says why."""


@dataclass
class AudioInfo:
    backend: str  # "soundfile" or "pyav"
    container: str
    codec: str
    sample_rate: int
    channels: int
    missing_seconds: float = 0.0  # audio the header promises but the file lacks (a truncated download or copy)


def _soundfile_info(path: Path) -> AudioInfo:
    info = sf.info(str(path))
    return AudioInfo("soundfile", info.format.lower(), info.subtype.lower(), int(info.samplerate), int(info.channels),
                     _missing_seconds(info.extra_info))  # fmt: skip


def _missing_seconds(extra_info: str) -> float:
    """Seconds a WAV's header declares past its end: libsndfile decodes what is there and notes the rest only here.

    Its header dump says "data : 96000 (should be 16000)": 96,000 bytes declared, 16,000 present.
    """
    declared = re.search(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", extra_info, re.M)
    rate = re.search(r"Bytes/sec\s*:\s*(\d+)", extra_info)
    if not (declared and rate and int(rate.group(1))):
        return 0.0
    return max(0, int(declared.group(1)) - int(declared.group(2))) / int(rate.group(1))


def _pyav_info(path: Path) -> AudioInfo:
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise DecodeError(f"container {container.format.name!r} holds no audio stream")
            stream = container.streams.audio[0]
            ctx = stream.codec_context
            if ctx is None:  # FFmpeg parsed the container but has no decoder for the codec inside
                raise DecodeError(f"container {container.format.name!r} holds audio in a codec FFmpeg can't decode")
            return AudioInfo("pyav", container.format.name, ctx.name, int(ctx.sample_rate or 0), int(ctx.channels or 0))
    except DecodeError:
        raise
    except Exception as exc:  # PyAV raises a zoo of FFmpeg error classes
        raise DecodeError(f"FFmpeg can't open it either: {exc}") from exc


# Leading bytes of the containers people record in, to name what a file claims to be when nothing can open it.
_MAGIC = {b"RIFF": "WAV (RIFF)", b"RF64": "WAV (RF64)", b"fLaC": "FLAC", b"OggS": "Ogg", b"caff": "CAF", b"FORM": "AIFF",
          b"#!AMR": "AMR", b"ID3": "MP3", b"\x1aE\xdf\xa3": "Matroska/WebM"}  # fmt: skip


def sniff(path: str | Path) -> str:
    """What the first bytes of `path` say it is: 'CAF', "MP4/3GP (brand '3gp4')", ... or 'unknown format'."""
    with open(path, "rb") as f:
        head = f.read(12)
    if head[4:8] == b"ftyp":
        return f"MP4/3GP (brand {head[8:12].decode('latin-1').strip()!r})"
    return next((name for magic, name in _MAGIC.items() if head.startswith(magic)), "unknown format")


def probe(path: str | Path) -> AudioInfo:
    """Which backend can open `path`, and its rate and channels. Raises DecodeError."""
    path = Path(path)
    try:
        info = _soundfile_info(path)
    except Exception as sf_exc:
        try:
            info = _pyav_info(path)
        except DecodeError as av_exc:
            raise DecodeError(f"{sniff(path)}, which neither decoder opens: soundfile: {sf_exc}; PyAV: {av_exc}") from None
    if info.sample_rate <= 0:
        raise DecodeError(f"header gives sample rate {info.sample_rate} ({info.container}/{info.codec})")
    if info.channels <= 0:
        raise DecodeError(f"header gives {info.channels} channels ({info.container}/{info.codec})")
    return info


def blocks(path: str | Path, info: AudioInfo | None = None, block_seconds: float = BLOCK_SECONDS) -> Iterator[np.ndarray]:
    """Yield float32 blocks of shape [frames, channels] at the file's own rate."""
    path = Path(path)
    info = info or probe(path)
    block_frames = max(1, int(block_seconds * info.sample_rate))
    if info.backend == "soundfile":
        pcm16 = info.codec == "pcm_16"
        try:
            with sf.SoundFile(str(path)) as f:
                while True:
                    block = f.read(block_frames, dtype="int16" if pcm16 else "float32", always_2d=True)
                    if not len(block):
                        return
                    if pcm16:
                        block = block.astype(np.float32)
                        block *= _PCM16_SCALE
                    yield block
        except sf.LibsndfileError as exc:
            raise DecodeError(f"{info.container}/{info.codec}: {exc}") from exc
        return
    yield from _pyav_blocks(path, info, block_frames)


def _pyav_blocks(path: Path, info: AudioInfo, block_frames: int) -> Iterator[np.ndarray]:
    import av

    # Planar float at the stream's own rate and layout: no hidden resampling by FFmpeg.
    pending: list[np.ndarray] = []
    size = 0
    try:
        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="fltp", layout=stream.codec_context.layout, rate=info.sample_rate)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    pending.append(out.to_ndarray().T)
                    size += pending[-1].shape[0]
                    if size >= block_frames:
                        yield np.ascontiguousarray(np.concatenate(pending), dtype=np.float32)
                        pending, size = [], 0
            for out in resampler.resample(None):
                pending.append(out.to_ndarray().T)
    except Exception as exc:
        raise DecodeError(f"{info.container}/{info.codec}: {exc}") from exc
    if pending:
        yield np.ascontiguousarray(np.concatenate(pending), dtype=np.float32)


def downmix(block: np.ndarray) -> np.ndarray:
    """[frames, channels] -> contiguous mono, the channels' mean."""
    if block.shape[1] == 1:
        return np.ascontiguousarray(block[:, 0])
    # column by column: numpy's mean(axis=1) over a 2-wide row is 15x slower than these adds
    mono = block[:, 0].copy()
    for c in range(1, block.shape[1]):
        mono += block[:, c]
    mono *= np.float32(1 / block.shape[1])
    return mono


def mono_blocks(path: str | Path, info: AudioInfo | None = None, target_rate: int = SAMPLE_RATE) -> Iterator[np.ndarray]:
    """Yield float32 mono blocks resampled to `target_rate` with soxr's streaming high-quality filter.

    Down-mixing averages the channels (not a sum: a stereo recording of one
    source must keep its level). The stream's filter state carries across
    blocks, so block boundaries leave no clicks.
    """
    info = info or probe(path)
    stream = None
    if info.sample_rate != target_rate:
        stream = soxr.ResampleStream(info.sample_rate, target_rate, 1, dtype="float32", quality="HQ")
    for block in blocks(path, info):
        mono = downmix(block)
        yield stream.resample_chunk(mono) if stream else mono
    if stream:
        yield stream.resample_chunk(np.zeros(0, np.float32), last=True)


def load(path: str | Path, target_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The whole file as float32 mono at `target_rate` (for short files and tests)."""
    parts = list(mono_blocks(path, target_rate=target_rate))
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """16-bit PCM WAV, written atomically."""
    from .atomic import atomic_path

    with atomic_path(path) as tmp:
        sf.write(str(tmp), np.clip(audio, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")
