import hashlib
import importlib.util
import os
import re
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("9.0")


validate(config, workflow.source_path("../schemas/config.schema.yaml"))


class ConfigError(Exception):
    pass


def _check_config(config):
    """What a schema can't say, said before any stage runs, naming the key."""
    corpus_root = os.path.normpath(config["embedded_corpus"]["root"])
    for name, ds in config["datasets"].items():
        key = f"datasets.{name}"
        if os.path.normpath(ds["root"]) != corpus_root and not os.path.isdir(ds["root"]):
            raise ConfigError(f"{key}.root: folder {ds['root']!r} does not exist")
        cat = ds["category"]
        if cat.get("from") == "filename":
            if "pattern" not in cat:
                raise ConfigError(f"{key}.category.pattern: needed when category.from is 'filename'")
            try:
                groups = re.compile(cat["pattern"]).groupindex
            except re.error as exc:
                raise ConfigError(f"{key}.category.pattern: not a valid regex ({exc})")
            if "category" not in groups:
                raise ConfigError(f"{key}.category.pattern: needs a (?P<category>...) group")
    mel = config["mel"]
    if mel["win_ms"] * 16 > mel["n_fft"]:
        raise ConfigError(f"mel.n_fft: {mel['n_fft']} is shorter than the {mel['win_ms']} ms window")


_check_config(config)

DATASETS = list(config["datasets"])
_LIBRARY = Path(importlib.util.find_spec("cry_diffusion").origin).parent


wildcard_constraints:
    dataset="|".join(re.escape(d) for d in DATASETS),


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
    """The embedded corpus is made by a rule; a user's corpus is simply there."""
    ds = dataset(wildcards)
    return config["embedded_corpus"]["root"] if is_embedded(ds) else []


def corpus_listing(wildcards):
    """Names, sizes and times of a user's corpus files: adding or editing one reruns ingest.

    The embedded corpus is a rule's output and tracked as such, so it needs none.
    """
    ds = dataset(wildcards)
    if is_embedded(ds):
        return "made by rule embedded_corpus"
    digest = hashlib.sha256()
    for folder, dirs, files in os.walk(ds["root"]):
        dirs.sort()
        for name in sorted(files):
            st = os.stat(os.path.join(folder, name), follow_symlinks=False)
            digest.update(f"{folder}/{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def segment_params(wildcards):
    ds = dataset(wildcards)
    return {
        "seconds": ds["segment_seconds"],
        "remainder": ds["remainder"],
        "pad_min_fraction": ds["pad_min_fraction"],
        "heldout_fraction": ds["heldout_fraction"],
        "split_seed": ds["split_seed"],
    }


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
    return files
