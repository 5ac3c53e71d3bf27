"""Shared start of every workflow script: stderr and logging go to the rule's log file."""

import logging
import sys
from pathlib import Path


def start(snakemake):
    """Route stderr to the rule's log and make `cry_diffusion` importable.

    Under `--sdm conda` the per-rule environments hold the third-party
    packages only; the library then comes from this checkout's src/.
    """
    log = open(snakemake.log[0], "w", buffering=1)
    sys.stderr = log
    logging.basicConfig(stream=log, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", force=True)
    try:
        import cry_diffusion  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
    return logging.getLogger(f"cry_diffusion.workflow.{snakemake.rule}")
