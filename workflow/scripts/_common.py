"""Shared start of every workflow script: stderr and logging go to the rule's log file."""

import logging
import sys
import traceback
from pathlib import Path

# Errors a stage raises on purpose, with a message that names the file and what to do (bad data, a bad
# setting, an unreadable file); anything else is a bug, and its traceback is the useful part.
EXPECTED = (ValueError, OSError, FloatingPointError, EOFError)


def start(snakemake):
    """Route stderr to the rule's log, make this workflow's own `cry_diffusion` the one imported, and let long
    loops print their progress (cry_diffusion.console) to stdout, which Snakemake shows on its console.

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
    from cry_diffusion import console

    console.show(" ".join([snakemake.rule, *map(str, snakemake.wildcards)]))
    dataset = getattr(snakemake.wildcards, "dataset", None)

    def last_line(kind, error, tb):
        traceback.print_exception(kind, error, tb)
        if issubclass(kind, EXPECTED):
            where = f"dataset {dataset}: " if dataset and f"dataset {dataset}" not in str(error) else ""
            print(f"{snakemake.rule} failed: {where}{error}", file=sys.stderr)

    sys.excepthook = last_line
    return logging.getLogger(f"cry_diffusion.workflow.{snakemake.rule}")


def train(snakemake, call, fn, **data):
    """A training rule's library call `fn`, through `call` (cry_diffusion.torchrun.call: one process per GPU of
    the rule's train.gpus): `data` (its input files, and what else it alone takes) and what every training rule passes."""
    p, out = snakemake.params, snakemake.output
    gpus = p.train["gpus"]
    return call(gpus, fn, **data, out_path=out.model, loss_csv=out.loss, checkpoint_root=p.checkpoints,
                model_config=p.model, diffusion_config=p.diffusion, train_config=p.train | p.cadence, device=p.device,
                threads=max(1, snakemake.threads // gpus))  # each process its share of the threads


def vocoder_settings(snakemake):
    """What a rule that samples a route passes cry_diffusion.generator as `vocoder`: its vocoder params with the
    trained vocoder's file, where the rule has one as input; None for the waveform route, which has no vocoder."""
    p = snakemake.params
    return None if p.vocoder is None else p.vocoder | {"model": snakemake.input.get("vocoder")}
