"""Shared start of every workflow script: stderr and logging go to the rule's log file."""

import logging
import sys
import traceback
from pathlib import Path

# Errors a stage raises on purpose, with a message that names the file and what to do (bad data, a bad
# setting, an unreadable file); anything else is a bug, and its traceback is the useful part.
EXPECTED = (ValueError, OSError, FloatingPointError, EOFError)


def start(snakemake):
    """Route stderr to the rule's log and make this workflow's own `cry_diffusion` the one imported.

    Its src/ goes first on the path: a different installed copy (a non-editable install, a
    second checkout sharing a venv) would run stale code that the rules' code hashes don't
    describe. Under `--sdm conda` the per-rule environments hold only third-party packages.
    An expected error ends the log (which the default profile shows on the console) in one line:
    the stage, the dataset, and the error's own message.
    """
    log = open(snakemake.log[0], "w", buffering=1)
    sys.stderr = log
    logging.basicConfig(stream=log, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", force=True)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
    dataset = getattr(snakemake.wildcards, "dataset", None)

    def last_line(kind, error, tb):
        traceback.print_exception(kind, error, tb)
        if issubclass(kind, EXPECTED):
            where = f"dataset {dataset}: " if dataset and f"dataset {dataset}" not in str(error) else ""
            print(f"{snakemake.rule} failed: {where}{error}", file=sys.stderr)

    sys.excepthook = last_line
    return logging.getLogger(f"cry_diffusion.workflow.{snakemake.rule}")
