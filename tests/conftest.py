import os
import sys
from pathlib import Path

# Two pytest workers share two cores with the pipelines they start. OpenMP's threads spin while they wait for work
# (libgomp's default), burning a core another process needed: waiting passively, the GPU check's rehearsal took 134
# CPU-seconds in the suite against 228. Set before torch loads OpenMP, here and in every process the tests start.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402

if not torch.cuda.is_available():
    # Triton kernels (cry_diffusion.fused) on the CPU, for tests/test_fused.py. Triton reads this
    # once, when it is imported, and importing torch's distributed or compile parts imports it:
    # so here, before any test module imports those.
    os.environ.setdefault("TRITON_INTERPRET", "1")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))  # for tests/browser.py
sys.path.insert(1, str(REPO / "benchmarks"))  # for the simulations benchmarks/intervals.py runs larger


if os.environ.get("PYTEST_XDIST_WORKER"):
    # The cores are shared between pytest-xdist's workers (pyproject's addopts): two workers with two torch
    # threads each on two cores leave OpenMP's threads waiting on each other, and one test ran 9 times slower.
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) // workers))  # the cores this process may use


def copy_repo(root: Path) -> Path:
    """The repo's files as a fresh clone has them (tracked, and new ones git would add), copied into `root`."""
    import shutil
    import subprocess

    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, listed):
        if (REPO / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
    return root


def tone(freq: float, seconds: float, rate: int, amplitude: float = 0.5, channels: int = 1) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    x = (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.repeat(x[:, None], channels, axis=1) if channels > 1 else x


def write(path: Path, audio: np.ndarray, rate: int, subtype: str = "PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio, rate, subtype=subtype)
    return path


@pytest.fixture(autouse=True)
def restore_torch_threads():
    """Training sets torch's global thread count; leave it as found for the next test."""
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture
def one_thread():
    """Tiny models: a second thread only adds synchronisation, which costs a lot on a busy CPU."""
    import torch

    torch.set_num_threads(1)  # restore_torch_threads puts it back


@pytest.fixture
def bad_corpus(tmp_path) -> Path:
    return make_bad_corpus(tmp_path / "corpus")


def make_bad_corpus(root: Path) -> Path:
    """A folder that mixes good files with every kind of bad one a real corpus holds."""
    write(root / "pain" / "good_44k.wav", tone(440, 2.3, 44100), 44100)
    write(root / "pain" / "good_stereo_22k.wav", tone(500, 1.6, 22050, channels=2), 22050)
    write(root / "hunger" / "good.flac", tone(600, 1.2, 16000), 16000)
    write(root / "hunger" / "good_copy.flac", tone(600, 1.2, 16000), 16000)  # same bytes as good.flac
    good = (root / "pain" / "good_44k.wav").read_bytes()
    (root / "pain" / "corrupt.wav").write_bytes(good[:30])  # header cut mid-way
    (root / "pain" / "zero.wav").write_bytes(b"")
    (root / "pain" / "notes.wav").write_text("this is not audio\n" * 20)
    write(root / "hunger" / "silent.wav", np.zeros(16000, np.float32), 16000)
    write(root / "hunger" / "short.wav", tone(440, 0.1, 16000), 16000)
    nan = tone(440, 1.0, 16000)
    nan[100:200] = np.nan
    write(root / "hunger" / "nan.wav", nan, 16000, subtype="FLOAT")
    write(root / "hunger" / "clipped.wav", np.clip(tone(440, 1.0, 16000, amplitude=3.0), -1, 1), 16000)
    (root / "README.txt").write_text("corpus notes")
    return root


# The files that run the pipeline take minutes each, and `--dist loadfile` gives each worker two files to start with,
# in the order below (pyproject's --no-loadscope-reorder: not by test count, which put these few-test files last, to
# run alone at the end): the workflow run and the slower test beside it on one worker, SLURM and the GPU check on the
# other. The rest follow longest first, so that each worker ends on short files: a minute-long file last kept one
# worker busy for a minute after the other had finished.
LONGEST_FIRST = ("test_workflow.py", "test_slurm.py", "test_conditional.py", "test_gpu_check.py", "test_train.py",
                 "test_evaluate.py", "test_workflow_inputs.py", "test_fused.py", "test_recovery.py", "test_readme.py",
                 "test_listening.py", "test_synth.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: k for k, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: each file keeps its own order


# Where the process that compiles pYIN says it has finished: set by the first pytest process, inherited by its workers.
PYIN_COMPILED = "CRY_DIFFUSION_TEST_PYIN_COMPILED"
COMPILE_PYIN = """import sys, traceback
from cry_diffusion.atomic import write_text
try:
    import librosa, numpy as np
    t = np.arange(4000) / 16000
    librosa.pyin(np.sin(2 * np.pi * 440 * t), fmin=150, fmax=1000, sr=16000, frame_length=1024, hop_length=160)
    text = "ok"
except BaseException:
    text = traceback.format_exc()
write_text(sys.argv[1], text)  # whole or not there: a worker never reads half of it
"""


def pytest_configure(config):
    """Before any worker starts: compile librosa's numba functions once, into its on-disk cache, in a process of its
    own that runs while the workers start and collect (about 20 s of compiling; the workers wait for it before their
    first test, in `pyin_compiled`). Two workers compiling pYIN's at once could write a torn cache file, and every
    process that loaded it after crashed (a segmentation fault in librosa.pyin, twice in one CI run)."""
    if PYIN_COMPILED not in os.environ:
        import subprocess
        import tempfile

        marker = Path(tempfile.mkdtemp(prefix="cry-diffusion-pyin-")) / "done"
        os.environ[PYIN_COMPILED] = str(marker)
        config._pyin_compiler = subprocess.Popen([sys.executable, "-c", COMPILE_PYIN, str(marker)])


def pytest_unconfigure(config):
    compiler = getattr(config, "_pyin_compiler", None)
    if compiler is not None:
        import shutil

        compiler.wait()
        shutil.rmtree(Path(os.environ[PYIN_COMPILED]).parent, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def pyin_compiled():
    """Each test process's first test waits until pYIN's functions are compiled (pytest_configure)."""
    import time

    marker = Path(os.environ[PYIN_COMPILED])
    deadline = time.monotonic() + 600
    while not marker.exists():
        assert time.monotonic() < deadline, "compiling librosa's pYIN took over 10 minutes"
        time.sleep(0.2)
    text = marker.read_text()
    assert text == "ok", f"compiling librosa's pYIN failed:\n{text}"
