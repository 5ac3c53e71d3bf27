"""Shared start of every workflow script: stderr and logging go to the rule's log file."""

import logging
import sys
from pathlib import Path


def start(snakemake):
    """Route stderr to the rule's log and make this workflow's own `cry_diffusion` the one imported.

    Its src/ goes first on the path: a different installed copy (a non-editable install, a
    second checkout sharing a venv) would run stale code that the rules' code hashes don't
    describe. Under `--sdm conda` the per-rule environments hold only third-party packages.
    """
    log = open(snakemake.log[0], "w", buffering=1)
    sys.stderr = log
    logging.basicConfig(stream=log, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", force=True)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
    return logging.getLogger(f"cry_diffusion.workflow.{snakemake.rule}")
