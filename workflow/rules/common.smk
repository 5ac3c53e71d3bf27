import ast
import functools
import hashlib
import os
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("9.0")
sys.path.insert(0, str(Path(workflow.basedir) / "src"))  # this workflow's library, whatever else is installed

from cry_diffusion import generator  # noqa: E402  (route and system names: one home, shared with the library)


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


def canonical(value, schema):
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


def validate_config(config):
    """Check the config, fill in the schema's defaults and put it in canonical form; a bad key stops here in one line."""
    import yaml

    schema_file = workflow.source_path("../schemas/config.schema.yaml")
    try:
        validate(config, schema_file)
    except WorkflowError:
        raise ConfigError(_config_problem(config, schema_file)) from None
    settled = canonical(dict(config), yaml.safe_load(open(schema_file)))
    config.clear()
    config.update(settled)


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
    schedules = {"diffusion": config["diffusion"]}  # every diffusion a run samples, by its config key
    if "mel" in config["generators"]:
        schedules["mel_prior.diffusion"] = config["mel_prior"]["diffusion"]
        if "diffwave" in config["vocoder"]["kinds"]:
            schedules["vocoder.diffwave.diffusion"] = config["vocoder"]["diffwave"]["diffusion"]
    for key, diffusion in schedules.items():
        if diffusion["beta_start"] >= diffusion["beta_end"]:
            raise ConfigError(f"{key}.beta_start: must be below {key}.beta_end")
        steps = [config["vocoder"]["diffwave"]["steps"]] if key.startswith("vocoder") else config["sampling"]["steps"]
        if too_many := [s for s in steps if s > diffusion["steps"]]:
            raise ConfigError(f"{'vocoder.diffwave' if key.startswith('vocoder') else 'sampling'}.steps: {too_many} "
                              f"exceed {key}.steps ({diffusion['steps']})")


_check_config(config)

DATASETS = [name for name, ds in config["datasets"].items() if ds["enabled"]]
if not DATASETS:
    raise ConfigError("datasets: every dataset has enabled: false; nothing to run")
_LIBRARY = Path(workflow.basedir) / "src" / "cry_diffusion"  # what the scripts import too (_common.start)


STEPS = config["sampling"]["steps"]
GENERATORS = config["generators"]
VOCODERS = config["vocoder"]["kinds"] if "mel" in GENERATORS else []
ROUTES = generator.routes(GENERATORS, VOCODERS)  # waveform, mel-<vocoder>: each its own samples, scores and listeners
COPY_SYNTHESIS = [generator.copy_synthesis(v) for v in VOCODERS]  # each vocoder's ceiling, scored as one more set


def systems(steps=None):
    """Every generated set of the run: each route at each step count (sampling.steps, or `steps`)."""
    return [generator.system(route, s) for route in ROUTES for s in steps or STEPS]


def route_settings(route):
    """(its generator's config section for training, its snapshots folder) of a route."""
    return (config["train"], "snapshots") if route == "waveform" else (config["mel_prior"]["train"], "mel_prior/snapshots")


def model_file(route):
    """The trained model a route samples from, relative to the dataset's results folder."""
    return "model.pt" if route == "waveform" else "mel_prior/model.pt"


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


# How often training writes a loss row and a checkpoint: the same weights either way, so not a rerun
# (nor in the checkpoint folder's run key, cry_diffusion.train_dataset.NOT_IN_RUN_KEY).
CADENCE = ("log_every", "checkpoint_every")


def tracked(train):
    """A train section less its cadence: what the rule's rerun check sees."""
    return {k: v for k, v in train.items() if k not in CADENCE}


def cadence(train):
    return untracked({k: train[k] for k in CADENCE})


TRAIN = tracked(config["train"])


def run_device(setting):
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
    from cry_diffusion.runtime import resolve_device

    return resolve_device("auto").type


DEVICE = run_device(config["device"])


wildcard_constraints:
    dataset="|".join(re.escape(d) for d in DATASETS),
    steps=r"\d+",
    route="|".join(re.escape(r) for r in ROUTES) or "none",
    vocoder="|".join(VOCODERS) or "none",


# Modules that change what a job prints, never what it makes: editing them reruns nothing.
NOT_HASHED = {"console"}


@functools.cache
def _module(path):
    """One file's direct imports of cry_diffusion modules (those inside functions too), and its code without
    docstrings or line numbers: editing a comment, a docstring or the layout changes nothing here, so it reruns
    nothing; changing what runs (a constant, a line of code) does. Each file is read once per parse, however
    many rules reach it."""
    tree = ast.parse(path.read_text(), str(path))
    package, names = path.parent == _LIBRARY, {"__init__"}  # importing any module runs the package's __init__
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level and package or (node.module or "").startswith("cry_diffusion")):
            base = (node.module or "") if node.level else (node.module or "").removeprefix("cry_diffusion").lstrip(".")
            names.update([base.split(".")[0]] if base else [alias.name for alias in node.names])
        elif isinstance(node, ast.Import):
            names.update(a.name.split(".")[1] for a in node.names if a.name.startswith("cry_diffusion."))
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    names -= NOT_HASHED
    imports = [source for source in (_LIBRARY / f"{name}.py" for name in sorted(names)) if source.is_file()]
    return imports, ast.dump(tree)


def library_modules(script):
    """The cry_diffusion modules a workflow script reaches, following imports all the way."""
    seen, todo = set(), [Path(workflow.basedir) / "workflow" / "scripts" / script]
    while todo:
        for source in _module(todo.pop())[0]:
            if source not in seen:
                seen.add(source)
                todo.append(source)
    return sorted(seen)


def code_hash(script, *files):
    """Hash of the library code a rule's script runs (library_modules), plus other package files it reads
    (templates): editing any of it reruns the rule and what follows, and nothing else."""
    digest = hashlib.sha256()
    for source in library_modules(script):
        digest.update(f"{source.name}\0{_module(source)[1]}\0".encode())
    for name in files:
        digest.update((_LIBRARY / name).read_bytes())
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
        }
        files |= {f"{name}/loss/{n}": f"results/{name}/figures/loss-{n}.png" for n in LOSS_CURVES}
        files |= {f"{name}/model/{route}": f"results/{name}/{model_file(route)}" for route in ROUTES}
        files |= {f"{name}/vocoder/{v}": f"results/{name}/vocoder/{v}/model.pt" for v in VOCODERS if v == "diffwave"}
        files |= samples_inputs(name, systems() + COPY_SYNTHESIS)
        files |= {f"{name}/eval/{subject}": f"results/{name}/evaluation/{subject}.json" for subject in eval_subjects()}
        files[f"{name}/embedding"] = f"results/{name}/embedding.json"
        files |= {f"{name}/tradeoff/{route}": f"results/{name}/evaluation/tradeoff-{route}.json" for route in ROUTES}
        for route in ROUTES:
            if route_settings(route)[0]["snapshot_every"]:
                files[f"{name}/progress/{route}"] = f"results/{name}/evaluation/progress-{route}.json"
                files[f"{name}/fig/progress/{route}"] = f"results/{name}/figures/progress-{route}.png"
        files |= listening_report_inputs(name)  # workflow/rules/listening.smk
        if name in utility_datasets():
            files[f"{name}/utility"] = f"results/{name}/utility.json"
            files[f"{name}/fig/utility"] = f"results/{name}/figures/utility.png"
    files["figures"] = "results/figures"
    return files


REFERENCES = ["real", "noise", "tones"]  # the floor and two ceilings every evaluation table shows


def eval_subjects():
    return systems() + COPY_SYNTHESIS + REFERENCES


def samples_inputs(name, subjects):
    """The clips and info of each generated set (or copy synthesis) of a dataset, keyed name/samples/<subject>/..."""
    files = {}
    for subject in subjects:
        files[f"{name}/samples/{subject}/npy"] = f"results/{name}/samples/{subject}/samples.npy"
        files[f"{name}/samples/{subject}/info"] = f"results/{name}/samples/{subject}/info.json"
    return files


def evaluate_inputs(wildcards):
    files = {
        "bundle": f"results/{wildcards.dataset}/embedding.pt",
        "reference": f"results/{wildcards.dataset}/evaluation/reference.npz",
    }
    if wildcards.subject not in REFERENCES:
        folder = f"results/{wildcards.dataset}/samples/{wildcards.subject}"
        files |= {"samples": f"{folder}/samples.npy", "info": f"{folder}/info.json"}
    return files


def evaluation_params(wildcards):
    return {k: v for k, v in config["evaluation"].items() if k != "embedding"}


def figure_inputs(wildcards):
    files = {}
    for name in DATASETS:
        files |= {f"{name}/tradeoff/{route}": f"results/{name}/evaluation/tradeoff-{route}.json" for route in ROUTES}
        files[f"{name}/reference"] = f"results/{name}/evaluation/reference.npz"
        files |= {f"{name}/eval/{subject}": f"results/{name}/evaluation/{subject}.json" for subject in eval_subjects()}
        files |= samples_inputs(name, systems())
    return files


def clip_seconds(wildcards):
    """How long each generated clip is: sampling.seconds, else the dataset's segment length (sample and reference use it)."""
    return config["sampling"]["seconds"] or dataset(wildcards)["segment_seconds"]


def sampling_params(wildcards, steps=None):
    """The sampling section for one step count (the wildcard's, else `steps`), not the list of them."""
    return {k: v for k, v in config["sampling"].items() if k != "steps"} | {"steps": int(steps or wildcards.steps)}


def vocoder_settings(kind):
    """What vocoding with `kind` reads of its config section: not its training (train_vocoder's business)."""
    return {k: v for k, v in config["vocoder"][kind].items() if k not in ("model", "diffusion", "train")}


def vocoder_model(wildcards):
    """The trained vocoder a job reads (its vocoder wildcard's, or its route's): DiffWave's; Griffin-Lim has none."""
    kind = wildcards.get("vocoder") or generator.vocoder_of(wildcards.get("route") or "waveform")
    return {"vocoder": f"results/{wildcards.dataset}/vocoder/diffwave/model.pt"} if kind == "diffwave" else {}


# --- does synthetic data help? (workflow/rules/utility.smk, cry_diffusion.utility) ---
UTILITY_ROUTE = config["utility"]["route"] or next((r for r in ROUTES if r != "waveform"), ROUTES[0])
if UTILITY_ROUTE not in ROUTES:
    raise ConfigError(f"utility.route: {UTILITY_ROUTE!r} is not a route of this run ({ROUTES})")
UTILITY_STEPS = config["utility"]["steps"] or max(STEPS)  # the full chain, as progress samples
UTILITY = {k: v for k, v in config["utility"].items() if k not in ("enabled", "route", "steps")}


def utility_datasets():
    """The datasets the utility stage runs for: every one whose segments can have categories (with two or more
    found, it measures; with fewer, utility.json says so)."""
    if not config["utility"]["enabled"]:
        return []
    return [name for name in DATASETS if config["datasets"][name]["category"]["from"] != "none"]


def utility_model(wildcards):
    """The model files the utility route's generator samples from: its generator's, and a trained vocoder's."""
    files = {"model": f"results/{wildcards.dataset}/{model_file(UTILITY_ROUTE)}"}
    if generator.vocoder_of(UTILITY_ROUTE) == "diffwave":
        files["vocoder"] = f"results/{wildcards.dataset}/vocoder/diffwave/model.pt"
    return files


def utility_vocoder(wildcards):
    kind = generator.vocoder_of(UTILITY_ROUTE)
    return None if kind is None else vocoder_settings(kind)


# --- the listening test (workflow/rules/listening.smk, cry_diffusion.listening) ---
LISTENING = config["listening"]
_untested = [s for s in LISTENING["steps"] or [] if s not in STEPS]
if _untested:
    raise ConfigError(f"listening.steps: {_untested} are not among sampling.steps ({STEPS})")
LISTENING_SYSTEMS = systems(LISTENING["steps"])  # every route at each step count listened to


def listening_report_inputs(name):
    """What the report reads of a dataset's study: its results, or nothing when listening.enabled is false."""
    if not LISTENING["enabled"]:
        return {}
    return {f"{name}/listening": f"results/listening/{name}/results.json",
            f"{name}/fig/listening": f"results/listening/{name}/results.png"}  # fmt: skip


def answers_database(wildcards):
    """The study's database, once the server or an import has made it. It is an input so that a new answer
    (the server checkpoints each one into the file) makes it newer than results.json: the next
    `snakemake results/report.html` redoes the analysis and the report, and nothing before them."""
    path = f"results/listening/{wildcards.dataset}/answers.sqlite"
    return [path] if os.path.exists(path) else []
