import numpy as np
import pytest
from conftest import tone, write

from cry_diffusion import SAMPLE_RATE, audio


def dominant_hz(x: np.ndarray, rate: int = SAMPLE_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[spectrum.argmax()])


@pytest.mark.parametrize("rate", [44100, 22050, 48000, 8000])
def test_resampling_keeps_a_tone_its_pitch_level_and_length(tmp_path, rate):
    path = write(tmp_path / "tone.wav", tone(1000, 2.0, rate, amplitude=0.5), rate, subtype="FLOAT")
    x = audio.load(path)
    assert abs(len(x) - 2 * SAMPLE_RATE) <= 2
    assert dominant_hz(x) == pytest.approx(1000, abs=2)
    middle = x[2000:-2000]  # away from the filter's edge transients
    assert np.sqrt(np.mean(middle**2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)


def test_content_above_16k_nyquist_is_removed_not_aliased(tmp_path):
    # 11 kHz at 44.1 kHz would alias to 5 kHz with a naive decimator.
    path = write(tmp_path / "high.wav", tone(11000, 1.0, 44100), 44100, subtype="FLOAT")
    x = audio.load(path)
    assert np.sqrt(np.mean(x[1000:-1000] ** 2)) < 1e-3


def test_stereo_is_averaged_not_summed(tmp_path):
    left = tone(440, 1.0, 16000, amplitude=0.4)
    stereo = np.stack([left, np.zeros_like(left)], axis=1)
    x = audio.load(write(tmp_path / "st.wav", stereo, 16000, subtype="FLOAT"))
    assert np.abs(x).max() == pytest.approx(0.2, rel=0.01)


def test_blocks_are_seamless(tmp_path):
    """Streaming in blocks must give the same signal as resampling it in one go."""
    import soxr

    x = tone(700, 3.0, 44100)
    path = write(tmp_path / "t.wav", x, 44100, subtype="FLOAT")
    streamed = np.concatenate(list(audio.mono_blocks(path, target_rate=SAMPLE_RATE)))
    info = audio.probe(path)
    pieces = [b[:, 0] for b in audio.blocks(path, info, block_seconds=0.37)]
    assert len(pieces) > 5
    whole = soxr.resample(x, 44100, SAMPLE_RATE, quality="HQ")
    n = min(len(whole), len(streamed))
    assert np.abs(streamed[1000 : n - 1000] - whole[1000 : n - 1000]).max() < 1e-3


@pytest.mark.parametrize(
    "fmt, codec, rate, ext",
    [("3gp", "amr_nb", 8000, "3gp"), ("caf", "adpcm_ima_qt", 16000, "caf"), ("ipod", "aac", 44100, "m4a")],
)
def test_phone_containers_decode_through_pyav(tmp_path, fmt, codec, rate, ext):
    av = pytest.importorskip("av")
    path = tmp_path / f"cry.{ext}"
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(tone(400, 1.0, rate)[None, :], format="flt", layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    info = audio.probe(path)
    assert info.backend == "pyav" and info.sample_rate == rate
    x = audio.load(path)
    assert abs(len(x) - SAMPLE_RATE) < 0.1 * SAMPLE_RATE  # codecs add a little priming/padding
    assert dominant_hz(x) == pytest.approx(400, abs=10)


def test_undecodable_file_names_both_decoders(tmp_path):
    path = tmp_path / "x.wav"
    path.write_text("not audio at all" * 10)
    with pytest.raises(audio.DecodeError, match="soundfile.*PyAV"):
        audio.probe(path)


def test_a_killed_writers_temporary_is_removed_by_the_next_write(tmp_path):
    """kill -9 mid-write once left .segments.npy.<random>.npy behind forever; a live writer's temporary stays."""
    import os
    import subprocess
    import sys

    from cry_diffusion.atomic import write_text

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = tmp_path / f".out.txt.partial-{int(dead.stdout)}-abc.txt"
    live = tmp_path / f".out.txt.partial-{os.getppid()}-xyz.txt"
    other = tmp_path / f".other.txt.partial-{int(dead.stdout)}-abc.txt"
    for f in (orphan, live, other):
        f.write_text("half")
    write_text(tmp_path / "out.txt", "whole")
    assert (tmp_path / "out.txt").read_text() == "whole"
    assert not orphan.exists() and live.exists() and other.exists()  # another target's leftovers wait for its own write
