"""Installing the project keeps the torch a user already has; the `cpu` extra pins the CPU wheel.

pip itself resolves the project's real metadata, offline: a scratch venv sees this venv's
packages (a .pth file) but holds a torch of another version in front of them, as a GPU
user's CUDA build would be, and `pip install --dry-run` reports what it would install.

    pytest tests/test_install.py
"""

import json
import subprocess
import sys
import sysconfig
import venv

import pytest
from conftest import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def user_venv(tmp_path_factory):
    """A venv whose torch is 2.4.0 (the oldest the project claims), with everything else borrowed from ours."""
    root = tmp_path_factory.mktemp("user") / "venv"
    venv.create(root, with_pip=False)
    python = root / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    dist = root / site.split(str(root) + "/", 1)[1] / "torch-2.4.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: torch\nVersion: 2.4.0\n")
    (dist / "INSTALLER").write_text("pip\n")
    (dist / "RECORD").write_text("")
    (dist.parent / "zz_borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # after its own site
    return python


def would_install(python, target: str) -> list[tuple[str, str]]:
    proc = subprocess.run([python, "-m", "pip", "install", "--dry-run", "--no-index", "--no-build-isolation",
                           "--quiet", "--report", "-", "-e", target], capture_output=True, text=True, cwd=REPO)
    if proc.returncode:
        return [("pip failed", proc.stderr[-1500:])]
    report = json.loads(proc.stdout)
    return [(i["metadata"]["name"].lower(), i["metadata"]["version"]) for i in report["install"]]


def test_install_keeps_the_users_torch(user_venv):
    installs = would_install(user_venv, str(REPO))
    assert [name for name, _ in installs] == ["cry-diffusion"], installs


def test_cpu_extra_pins_the_cpu_wheel(user_venv):
    torch = [v for name, v in would_install(user_venv, f"{REPO}[cpu]") if name in ("torch", "pip failed")]
    # the pinned release, from the local CPU wheel where pip's config finds one (else pip fails: no index)
    assert torch and (torch[0] == "pip failed" or torch[0].startswith("2.13.0")), torch
