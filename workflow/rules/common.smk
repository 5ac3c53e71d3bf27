# Read first: the config checked and settled (cry_diffusion.workflow_config), the names of what the run makes,
# and each rule's params. The files each rule reads are inputs.smk's business.
import os
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("9.0")
sys.path.insert(0, str(Path(workflow.basedir) / "src"))  # this workflow's library, whatever else is installed

from cry_diffusion import generator, rerun_keys, workflow_config  # noqa: E402  (importable once src/ is on the path)
from cry_diffusion.workflow_config import tracked  # noqa: E402  (a train section less its cadence)


def validate_config(config):
    """Check the config, fill in the schema's defaults and put it in canonical form; a bad key stops here in one line."""
    schema_file = workflow.source_path("../schemas/config.schema.yaml")
    try:
        validate(config, schema_file)  # Snakemake's: it fills in the defaults, as jsonschema alone doesn't
    except WorkflowError:
        raise workflow_config.ConfigError(workflow_config.schema_problem(config, schema_file)) from None
    settled = workflow_config.canonical(dict(config), workflow_config.load_schema(schema_file))
    config.clear()
    config.update(settled)


validate_config(config)
workflow_config.check(config)  # what the schema can't say

DATASETS = [name for name, ds in config["datasets"].items() if ds["enabled"]]
STEPS = config["sampling"]["steps"]
GENERATORS = config["generators"]
VOCODERS = workflow_config.vocoders(config)
ROUTES = generator.routes(GENERATORS, VOCODERS)  # waveform, mel-<vocoder>: each its own samples, scores and listeners
COPY_SYNTHESIS = [generator.copy_synthesis(v) for v in VOCODERS]  # each vocoder's ceiling, scored as one more set
REFERENCES = ["real", "noise", "tones"]  # the floor and two ceilings every evaluation table shows


def systems(steps=None):
    """Every generated set of the run: each route at each step count (sampling.steps, or `steps`)."""
    return [generator.system(route, s) for route in ROUTES for s in steps or STEPS]


def route_settings(route):
    """(its generator's config section for training, its snapshots folder) of a route."""
    return (config["train"], "snapshots") if route == "waveform" else (config["mel_prior"]["train"], "mel_prior/snapshots")


# the training curve of each network a run trains: the figure's name -> its loss.csv, in the dataset's results folder
LOSS_CURVES = ({"waveform": "loss.csv"} if "waveform" in GENERATORS else {}) | (
    {"mel_prior": "mel_prior/loss.csv"} if "mel" in GENERATORS else {}) | (
    {"vocoder-diffwave": "vocoder/diffwave/loss.csv"} if "diffwave" in VOCODERS else {})


def untracked(settings):
    """`settings` as a param the script reads but Snakemake leaves out of the rule's rerun check.

    Snakemake records, and compares between runs, only the params that don't derive from input,
    output, threads or resources; a function that takes `threads` derives from them. So this is for
    settings that change how a job runs, never what it makes (tests/test_workflow.py holds it to that).
    """
    return lambda wildcards, threads: settings


def cadence(train):
    """How often a train section logs and checkpoints (cry_diffusion.workflow_config.CADENCE), untracked."""
    return untracked(workflow_config.cadence(train))


TRAIN = tracked(config["train"])
DEVICE = workflow_config.run_device(config["device"])


wildcard_constraints:
    dataset="|".join(re.escape(d) for d in DATASETS),
    steps=r"\d+",
    route="|".join(re.escape(r) for r in ROUTES) or "none",
    vocoder="|".join(VOCODERS) or "none",


# kept beside Snakemake's own records in the working folder: a command with the code unchanged reads its hashes
CODE_HASHES = Path(".snakemake", "cry_diffusion", "code_hashes.json").absolute()


def code_hash(script, *files):
    """A rule's `code` param: the hash of the library code workflow/scripts/`script` runs, and of the package
    `files` it reads (cry_diffusion.rerun_keys)."""
    return rerun_keys.code_hash(Path(workflow.basedir) / "workflow" / "scripts" / script,
                               Path(workflow.basedir) / "src" / "cry_diffusion", files, CODE_HASHES)  # fmt: skip


# --- does synthetic data help? (workflow/rules/utility.smk, cry_diffusion.utility) ---
UTILITY_ROUTE = workflow_config.utility_route(config)
UTILITY_STEPS = config["utility"]["steps"] or max(STEPS)  # the full chain, as progress samples
UTILITY = {k: v for k, v in config["utility"].items() if k not in ("enabled", "route", "steps")}


# --- the listening test (workflow/rules/listening.smk, cry_diffusion.listening) ---
LISTENING = config["listening"]
LISTENING_SYSTEMS = systems(LISTENING["steps"])  # every route at each step count listened to


# --- params that are functions of the wildcards ---
def dataset(wildcards):
    return config["datasets"][wildcards.dataset]


def is_embedded(ds):
    return os.path.normpath(ds["root"]) == os.path.normpath(config["embedded_corpus"]["root"])


def corpus_listing(wildcards):
    """A user's corpus files as a hash (cry_diffusion.rerun_keys): adding or editing one reruns ingest. The
    embedded corpus is a rule's output and tracked as such."""
    ds = dataset(wildcards)
    return "made by rule embedded_corpus" if is_embedded(ds) else rerun_keys.corpus_listing(ds)


# Dataset keys that only the segment stage reads; ingest gets the rest, so changing these reruns segment only.
SEGMENT_KEYS = {"segment_seconds": "seconds", "remainder": "remainder", "pad_min_fraction": "pad_min_fraction",
                "heldout_fraction": "heldout_fraction", "split_seed": "split_seed"}  # fmt: skip


def source_params(wildcards):
    return {k: v for k, v in dataset(wildcards).items() if k not in SEGMENT_KEYS}


def segment_params(wildcards):
    ds = dataset(wildcards)
    return {param: ds[key] for key, param in SEGMENT_KEYS.items()}


def evaluation_params(wildcards):
    return {k: v for k, v in config["evaluation"].items() if k != "embedding"}


def clip_seconds(wildcards):
    """How long each generated clip is: sampling.seconds, else the dataset's segment length (sample and reference use it)."""
    return config["sampling"]["seconds"] or dataset(wildcards)["segment_seconds"]


def sampling_params(wildcards, steps=None):
    """The sampling section for one step count (the wildcard's, else `steps`), not the list of them."""
    return {k: v for k, v in config["sampling"].items() if k != "steps"} | {"steps": int(steps or wildcards.steps)}


def vocoder_settings(kind):
    """What vocoding with `kind` reads of its config section: not its training (train_vocoder's business)."""
    return {k: v for k, v in config["vocoder"][kind].items() if k not in ("model", "diffusion", "train")}


def utility_vocoder(wildcards):
    kind = generator.vocoder_of(UTILITY_ROUTE)
    return None if kind is None else vocoder_settings(kind)
