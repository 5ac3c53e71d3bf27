import hashlib
import importlib.util
import os
import re
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("9.0")


class ConfigError(Exception):
    pass


def _config_problem(config, schema_file):
    """The schema's own verdict in one line: the key, what it holds and what was expected."""
    import jsonschema
    import yaml

    schema = yaml.safe_load(open(schema_file))
    error = jsonschema.exceptions.best_match(jsonschema.validators.validator_for(schema)(schema).iter_errors(config))
    key = ".".join(str(part) for part in error.absolute_path) or "(top level)"
    return f"config key {key}: {error.message}"


def validate_config(config):
    """Check the config and fill in the schema's defaults; a bad key stops here in one line, not a schema dump."""
    schema_file = workflow.source_path("../schemas/config.schema.yaml")
    try:
        validate(config, schema_file)
    except WorkflowError:
        raise ConfigError(_config_problem(config, schema_file)) from None


validate_config(config)


def _check_pattern(key, spec, group):
    if spec.get("pattern") is None:
        raise ConfigError(f"{key}.pattern: needed when {key}.from is 'filename'")
    try:
        groups = re.compile(spec["pattern"]).groupindex
    except re.error as exc:
        raise ConfigError(f"{key}.pattern: not a valid regex ({exc})")
    if group not in groups:
        raise ConfigError(f"{key}.pattern: needs a (?P<{group}>...) group")


def listing_path(ds):
    return os.path.join(ds["root"], ds["manifest"])


def _check_tables(key, ds):
    """The annotation template and the listing a kind needs, and column names and positions not mixed."""
    from cry_diffusion.annotations import TableError, TableFormat, read_table

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


def _check_config(config):
    """What a schema can't say, said before any stage runs, naming the key."""
    corpus_root = os.path.normpath(config["embedded_corpus"]["root"])
    for name, ds in config["datasets"].items():
        key = f"datasets.{name}"
        if not ds["enabled"]:
            continue
        if os.path.normpath(ds["root"]) != corpus_root and not os.path.isdir(ds["root"]):
            raise ConfigError(f"{key}.root: folder {ds['root']!r} does not exist")
        for part, group in (("category", "category"), ("recording", "recording")):
            if ds[part].get("from") == "filename":
                _check_pattern(f"{key}.{part}", ds[part], group)
        _check_tables(key, ds)
    mel = config["mel"]
    if mel["win_ms"] * 16 > mel["n_fft"]:
        raise ConfigError(f"mel.n_fft: {mel['n_fft']} is shorter than the {mel['win_ms']} ms window")
    too_many = [s for s in config["sampling"]["steps"] if s > config["diffusion"]["steps"]]
    if too_many:
        raise ConfigError(f"sampling.steps: {too_many} exceed diffusion.steps ({config['diffusion']['steps']})")
    if config["diffusion"]["beta_start"] >= config["diffusion"]["beta_end"]:
        raise ConfigError("diffusion.beta_start: must be below diffusion.beta_end")


_check_config(config)

DATASETS = [name for name, ds in config["datasets"].items() if ds["enabled"]]
if not DATASETS:
    raise ConfigError("datasets: every dataset has enabled: false; nothing to run")
_LIBRARY = Path(importlib.util.find_spec("cry_diffusion").origin).parent


STEPS = config["sampling"]["steps"]


wildcard_constraints:
    dataset="|".join(re.escape(d) for d in DATASETS),
    steps=r"\d+",


def code_hash(*modules):
    """Hash of the library files a stage runs, so editing one reruns that stage (and what follows).

    Names without a suffix are modules ("mel" is mel.py); others are paths in the package.
    """
    digest = hashlib.sha256()
    for name in ("__init__", "atomic") + modules:
        digest.update((_LIBRARY / (name if "." in name else f"{name}.py")).read_bytes())
    return digest.hexdigest()[:16]


def dataset(wildcards):
    return config["datasets"][wildcards.dataset]


def is_embedded(ds):
    return os.path.normpath(ds["root"]) == os.path.normpath(config["embedded_corpus"]["root"])


def corpus_input(wildcards):
    """The embedded corpus is made by a rule; a user's listing is a file to track; a user's folder is simply there."""
    ds = dataset(wildcards)
    if is_embedded(ds):
        return config["embedded_corpus"]["root"]
    return listing_path(ds) if ds["kind"] == "manifest" else []


def corpus_listing(wildcards):
    """Names, sizes and times of a user's corpus files: adding or editing one reruns ingest.

    For a listing, the files it names (wherever they are); otherwise every file
    under the root. The embedded corpus is a rule's output and tracked as such.
    """
    from cry_diffusion.annotations import TableFormat, read_table

    ds = dataset(wildcards)
    if is_embedded(ds):
        return "made by rule embedded_corpus"
    if ds["kind"] == "manifest":
        listing = read_table(listing_path(ds), TableFormat(ds["columns"], ds["time_unit"], ds["sep"]), ["path"])
        files = sorted({os.path.join(ds["root"], r["path"]) for r in listing if r["path"]})
    else:
        files = [os.path.join(folder, name) for folder, dirs, names in sorted(os.walk(ds["root"])) for name in sorted(names)]
    digest = hashlib.sha256()
    for path in files:
        st = os.stat(path, follow_symlinks=False) if os.path.lexists(path) else None
        digest.update(f"{path}\0{st and st.st_size}\0{st and st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


# Dataset keys that only the segment stage reads; ingest gets the rest, so changing these reruns segment only.
SEGMENT_KEYS = {"segment_seconds": "seconds", "remainder": "remainder", "pad_min_fraction": "pad_min_fraction",
                "heldout_fraction": "heldout_fraction", "split_seed": "split_seed"}  # fmt: skip


def source_params(wildcards):
    return {k: v for k, v in dataset(wildcards).items() if k not in SEGMENT_KEYS}


def segment_params(wildcards):
    ds = dataset(wildcards)
    return {param: ds[key] for key, param in SEGMENT_KEYS.items()}


def report_inputs(wildcards):
    files = {}
    for name in DATASETS:
        files |= {
            f"{name}/manifest": f"results/{name}/manifest.csv",
            f"{name}/table": f"results/{name}/segments.csv",
            f"{name}/npy": f"results/{name}/segments.npy",
            f"{name}/summary": f"results/{name}/segments.json",
            f"{name}/fig/mels": f"results/{name}/figures/mels.png",
            f"{name}/fig/durations": f"results/{name}/figures/durations.png",
            f"{name}/fig/categories": f"results/{name}/figures/categories.png",
            f"{name}/model": f"results/{name}/model.pt",
            f"{name}/fig/loss": f"results/{name}/figures/loss.png",
        }
        for steps in STEPS:
            files[f"{name}/samples/{steps}/npy"] = f"results/{name}/samples/steps-{steps}/samples.npy"
            files[f"{name}/samples/{steps}/info"] = f"results/{name}/samples/steps-{steps}/info.json"
        files |= {f"{name}/eval/{subject}": f"results/{name}/evaluation/{subject}.json" for subject in eval_subjects()}
        files[f"{name}/embedding"] = f"results/{name}/embedding.json"
        files[f"{name}/tradeoff"] = f"results/{name}/evaluation/tradeoff.json"
    files["figures"] = "results/figures"
    return files


REFERENCES = ["real", "noise", "tones"]  # the floor and two ceilings every evaluation table shows


def eval_subjects():
    return [f"steps-{s}" for s in STEPS] + REFERENCES


def evaluate_inputs(wildcards):
    files = {
        "bundle": f"results/{wildcards.dataset}/embedding.pt",
        "reference": f"results/{wildcards.dataset}/evaluation/reference.npz",
    }
    if wildcards.subject.startswith("steps-"):
        folder = f"results/{wildcards.dataset}/samples/{wildcards.subject}"
        files |= {"samples": f"{folder}/samples.npy", "info": f"{folder}/info.json"}
    return files


def evaluation_params(wildcards):
    return {k: v for k, v in config["evaluation"].items() if k != "embedding"}


def figure_inputs(wildcards):
    files = {}
    for name in DATASETS:
        files[f"{name}/tradeoff"] = f"results/{name}/evaluation/tradeoff.json"
        files[f"{name}/reference"] = f"results/{name}/evaluation/reference.npz"
        files |= {f"{name}/eval/{subject}": f"results/{name}/evaluation/{subject}.json" for subject in eval_subjects()}
        for steps in STEPS:
            files[f"{name}/samples/{steps}/npy"] = f"results/{name}/samples/steps-{steps}/samples.npy"
            files[f"{name}/samples/{steps}/info"] = f"results/{name}/samples/steps-{steps}/info.json"
    return files


def clip_seconds(wildcards):
    """How long each generated clip is: sampling.seconds, else the dataset's segment length (sample and reference use it)."""
    return config["sampling"]["seconds"] or dataset(wildcards)["segment_seconds"]


def sampling_params(wildcards):
    return {k: v for k, v in config["sampling"].items() if k != "steps"} | {"steps": int(wildcards.steps)}
