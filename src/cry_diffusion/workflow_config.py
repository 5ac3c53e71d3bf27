"""The workflow's config, checked and settled before any rule sees it (workflow/rules/common.smk calls this).

A bad value stops the run at parse time, in one line that names its key (ConfigError); a good one
is put in one canonical form, and split into what each rule's rerun check sees, so that a rule
reruns when a value that changes its output changes, and for nothing else.

Like the rest of the library it knows nothing of Snakemake: common.smk fills in the schema's
defaults (snakemake.utils.validate) and hands the plain dict here.

    from cry_diffusion import workflow_config
    config = workflow_config.canonical(config, workflow_config.load_schema("workflow/schemas/config.schema.yaml"))
    workflow_config.check(config)  # e.g. ConfigError("mel.n_fft: 256 is shorter than the 25.0 ms window")
"""

from __future__ import annotations

import os
import re

import jsonschema
import yaml

from . import SAMPLE_RATE, generator
from .annotations import TableError, TableFormat, read_table


class ConfigError(Exception):
    pass


def load_schema(schema_file) -> dict:
    with open(schema_file) as f:
        return yaml.safe_load(f)


def schema_problem(config: dict, schema_file) -> str:
    """The schema's own verdict in one line: the key, what it holds and what was expected."""
    schema = load_schema(schema_file)
    error = jsonschema.exceptions.best_match(jsonschema.validators.validator_for(schema)(schema).iter_errors(config))
    key = ".".join(str(part) for part in error.absolute_path) or "(top level)"
    return f"config key {key}: {error.message}"


def canonical(value, schema: dict | None):
    """Keys sorted, and numbers as the schema types them (1 -> 1.0 where it says number; 2.0 -> 2 for integer).

    Snakemake compares a rule's params by their text, so the same values in another key
    order, or 1 for 1.0, would rerun everything after them, training included.
    """
    schema = schema or {}
    if isinstance(value, dict):
        properties, extra = schema.get("properties", {}), schema.get("additionalProperties")
        return {k: canonical(value[k], properties.get(k, extra if isinstance(extra, dict) else None)) for k in sorted(value)}
    if isinstance(value, list):
        return [canonical(v, schema.get("items")) for v in value]
    types = schema.get("type") if isinstance(schema.get("type"), list) else [schema.get("type")]
    if isinstance(value, bool):
        return value
    if "number" in types and isinstance(value, int):
        return float(value)
    if "integer" in types and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def listing_path(ds: dict) -> str:
    """A manifest dataset's listing file."""
    return os.path.join(ds["root"], ds["manifest"])


def vocoders(config: dict) -> list[str]:
    """The vocoders a run trains or uses: none unless the mel generator runs."""
    return config["vocoder"]["kinds"] if "mel" in config["generators"] else []


def utility_route(config: dict) -> str:
    """The route the utility stage samples: utility.route, else the first mel route, else the waveform one."""
    routes = generator.routes(config["generators"], vocoders(config))
    route = config["utility"]["route"] or next((r for r in routes if r != "waveform"), routes[0])
    if route not in routes:
        raise ConfigError(f"utility.route: {route!r} is not a route of this run ({routes})")
    return route


def check(config: dict) -> None:
    """What a schema can't say, said before any stage runs, naming the key."""
    corpus_root = os.path.normpath(config["embedded_corpus"]["root"])
    for name, ds in config["datasets"].items():
        key = f"datasets.{name}"
        if not ds["enabled"]:
            continue
        if os.path.normpath(ds["root"]) != corpus_root and not os.path.isdir(ds["root"]):
            raise ConfigError(f"{key}.root: folder {ds['root']!r} does not exist")
        for part in ("category", "recording"):  # each pattern needs the group of its own name
            if ds[part].get("from") == "filename":
                _check_pattern(f"{key}.{part}", ds[part], part)
        _check_tables(key, ds)
    mel = config["mel"]
    if mel["win_ms"] * SAMPLE_RATE / 1000 > mel["n_fft"]:
        raise ConfigError(f"mel.n_fft: {mel['n_fft']} is shorter than the {mel['win_ms']} ms window")
    _check_schedules(config)
    if not any(ds["enabled"] for ds in config["datasets"].values()):
        raise ConfigError("datasets: every dataset has enabled: false; nothing to run")
    utility_route(config)
    steps = config["sampling"]["steps"]
    if untested := [s for s in config["listening"]["steps"] or [] if s not in steps]:
        raise ConfigError(f"listening.steps: {untested} are not among sampling.steps ({steps})")


def _check_pattern(key, spec, group):
    if spec.get("pattern") is None:
        raise ConfigError(f"{key}.pattern: needed when {key}.from is 'filename'")
    try:
        groups = re.compile(spec["pattern"]).groupindex
    except re.error as exc:
        raise ConfigError(f"{key}.pattern: not a valid regex ({exc})")
    if group not in groups:
        raise ConfigError(f"{key}.pattern: needs a (?P<{group}>...) group")


def _check_tables(key, ds):
    """The annotation template and the listing a kind needs, and column names and positions not mixed."""
    needed = {"annotated": ["start", "end"], "manifest": ["path"], "folder": []}[ds["kind"]]
    if ds["kind"] == "annotated" and (ds["cry_labels"] is not None or ds["category"]["from"] == "label"):
        needed.append("label")
    if len({type(ds["columns"][c]) for c in needed}) > 1:
        given = ", ".join(f"{c}: {ds['columns'][c]!r}" for c in needed)
        raise ConfigError(f"{key}.columns: {given}: give these all by header name or all by position, not both")
    if ds["kind"] == "annotated":
        try:
            ds["annotations"].format(dir="d", stem="s", name="n")
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(f"{key}.annotations: {ds['annotations']!r} may use only {{dir}}, {{stem}} and {{name}} ({exc!r})")
    if ds["kind"] == "manifest":
        listing = listing_path(ds)
        if not os.path.isfile(listing):
            raise ConfigError(f"{key}.manifest: file {listing!r} does not exist")
        try:
            read_table(listing, TableFormat(ds["columns"], ds["time_unit"], ds["sep"]), ["path"])
        except TableError as exc:
            raise ConfigError(f"{key}.manifest: {listing}: {exc} (see {key}.columns.path)")
    elif ds["category"]["from"] == "label" and ds["kind"] != "annotated":
        raise ConfigError(f"{key}.category.from: 'label' needs kind 'annotated'")


def _check_schedules(config):
    """Every diffusion a run samples: its betas rise, and no step count asks for more steps than it has."""
    schedules = {"diffusion": config["diffusion"]}  # by config key
    if "mel" in config["generators"]:
        schedules["mel_prior.diffusion"] = config["mel_prior"]["diffusion"]
        if "diffwave" in config["vocoder"]["kinds"]:
            schedules["vocoder.diffwave.diffusion"] = config["vocoder"]["diffwave"]["diffusion"]
    for key, diffusion in schedules.items():
        if diffusion["beta_start"] >= diffusion["beta_end"]:
            raise ConfigError(f"{key}.beta_start: must be below {key}.beta_end")
        vocoder = key.startswith("vocoder")
        steps = [config["vocoder"]["diffwave"]["steps"]] if vocoder else config["sampling"]["steps"]
        if too_many := [s for s in steps if s > diffusion["steps"]]:
            raise ConfigError(f"{'vocoder.diffwave' if vocoder else 'sampling'}.steps: {too_many} "
                              f"exceed {key}.steps ({diffusion['steps']})")


# How often training writes a loss row and a checkpoint: the same weights either way, so not a rerun
# (nor in the checkpoint folder's run key, cry_diffusion.train_dataset.NOT_IN_RUN_KEY).
CADENCE = ("log_every", "checkpoint_every")


def tracked(train: dict) -> dict:
    """A train section less its cadence: what the rule's rerun check sees."""
    return {k: v for k, v in train.items() if k not in CADENCE}


def cadence(train: dict) -> dict:
    """A train section's cadence: what the rule reads outside its rerun check."""
    return {k: train[k] for k in CADENCE}


def run_device(setting: str) -> str:
    """The device the torch stages run on, with "auto" resolved as cry_diffusion.runtime.resolve_device does here.

    Rules get this, not the setting: a result made on the CPU is made again on a GPU machine (the same
    seed gives other audio there), and `cpu` and `auto` on a CPU machine are one run, rerunning nothing.
    Torch can't see a GPU without a GPU driver's device files, and importing it takes a second or two,
    so it is asked only where they exist. A SLURM job resolves it again on its own node.
    """
    if setting != "auto":
        return setting
    if not any(os.path.exists(os.path.join(os.sep, "dev", name)) for name in ("nvidiactl", "kfd")):
        return "cpu"
    from .runtime import resolve_device  # noqa: PLC0415 (torch: only where a GPU may be)

    return resolve_device("auto").type
