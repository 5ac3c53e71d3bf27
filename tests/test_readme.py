"""Every snakemake command we print runs as printed: the code blocks of README.md and docs/*.md, and the
usage lines at the top of the Snakefile, configs and profiles, each dry-run (-n) in a clean copy of the repo.

Snakemake reads every word after an option that takes several values (--resources,
--configfile, --forcerun) as one more value, so a target placed after one is swallowed; a
documented command that does that fails here before a user meets it.

    pytest tests/test_readme.py
"""

import re
import shlex
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, copy_repo, tone, write

pytestmark = pytest.mark.slow

HEADERS = ["Snakefile", "config.yaml", "config.paper.yaml", "benchmarks/quality.yaml", "benchmarks/quality-gpu.yaml",
           "benchmarks/cries-cpu.yaml",
           "profiles/default/config.yaml",
           "profiles/slurm/config.yaml"]  # fmt: skip


def documented_commands() -> list[tuple[str, list[str]]]:
    """(where, argv) for each snakemake command in the README's and docs' code blocks and the files' header comments."""
    found = []
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for block in re.findall(r"^```[a-z]*\n(.*?)^```", page.read_text(), re.S | re.M):
            for line in block.splitlines():
                for part in line.split("&&"):
                    found.append((str(page.relative_to(REPO)), part))
    for name in HEADERS:
        for line in (REPO / name).read_text().splitlines():
            if line.startswith("#"):
                found.append((name, line.lstrip("# ")))
    places = {}  # each command once (a dry run of the same words proves nothing more), with every place it is printed
    for where, text in found:
        if re.match(r"\s*(\S*/)?snakemake\s", text):
            words = shlex.split(text, comments=True)
            places.setdefault(tuple(words[1:]), []).append(where)
    return [(", ".join(dict.fromkeys(where)), ["snakemake", *args]) for args, where in places.items()]


COMMANDS = documented_commands()


def test_the_readme_has_the_users_commands():
    printed = [" ".join(w) for _, w in COMMANDS]
    assert len(COMMANDS) >= 10 and len(set(printed)) == len(printed)
    assert any("--resources gpu=1" in c for c in printed)  # the way GPU users type it, made to work
    assert any("--workflow-profile profiles/slurm" in c for c in printed)
    assert any("config.paper.yaml" in c for c in printed)


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """The repo's files as a fresh clone has them (tracked, and new files git would add), plus the user's data."""
    root = copy_repo(tmp_path_factory.mktemp("clone"))
    # config.paper.yaml asks the user to point it at their corpora: two tiny stand-ins where it looks
    for category in ("deaf", "pain"):
        write(root / "data" / "baby_chillanto" / category / "a.wav", tone(400, 1.0, 16000), 16000)
    for k in range(2):
        write(root / "data" / "debarbaro_cry" / f"P01_{k}.wav", np.zeros(80000, np.float32) + tone(450, 5.0, 16000), 16000)
    return root


@pytest.mark.parametrize("where,words", COMMANDS, ids=[" ".join(c[1:]) for _, c in COMMANDS])
def test_documented_command_dry_runs(clone, where, words):
    cmd = [sys.executable, "-m", "snakemake", "-n", *words[1:]]
    proc = subprocess.run(cmd, cwd=clone, capture_output=True, text=True)
    assert proc.returncode == 0, f"{where}: {' '.join(words)}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    assert "Job stats" in proc.stdout + proc.stderr or "Nothing to be done" in proc.stdout + proc.stderr
