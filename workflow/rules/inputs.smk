# The input functions of workflow/rules/*.smk: the files the rules read where those depend on the config or the
# wildcards. Here, not beside the rules, because Snakemake's lint keeps functions out of files that hold rules.


def model_file(route):
    """The trained model a route samples from, relative to the dataset's results folder."""
    return "model.pt" if route == "waveform" else "mel_prior/model.pt"


def corpus_input(wildcards):
    """The embedded corpus is made by a rule; a user's listing is a file to track; a user's folder is simply there."""
    ds = dataset(wildcards)
    if is_embedded(ds):
        return config["embedded_corpus"]["root"]
    return workflow_config.listing_path(ds) if ds["kind"] == "manifest" else []


def evaluate_inputs(wildcards):
    files = {
        "bundle": f"results/{wildcards.dataset}/embedding.pt",
        "reference": f"results/{wildcards.dataset}/evaluation/reference.npz",
    }
    if wildcards.subject not in REFERENCES:
        folder = f"results/{wildcards.dataset}/samples/{wildcards.subject}"
        files |= {"samples": f"{folder}/samples.npy", "info": f"{folder}/info.json"}
    return files


def figure_inputs(wildcards):
    files = {}
    for name in DATASETS:
        files |= {f"{name}/tradeoff/{route}": f"results/{name}/evaluation/tradeoff-{route}.json" for route in ROUTES}
        files[f"{name}/reference"] = f"results/{name}/evaluation/reference.npz"
        files |= {f"{name}/eval/{subject}": f"results/{name}/evaluation/{subject}.json" for subject in eval_subjects()}
        files |= samples_inputs(name, systems())
    return files


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
        files |= listening_report_inputs(name)
        if name in utility_datasets():
            files[f"{name}/utility"] = f"results/{name}/utility.json"
            files[f"{name}/fig/utility"] = f"results/{name}/figures/utility.png"
    files["figures"] = "results/figures"
    return files


def eval_subjects():
    return systems() + COPY_SYNTHESIS + REFERENCES


def samples_inputs(name, subjects):
    """The clips and info of each generated set (or copy synthesis) of a dataset, keyed name/samples/<subject>/..."""
    files = {}
    for subject in subjects:
        files[f"{name}/samples/{subject}/npy"] = f"results/{name}/samples/{subject}/samples.npy"
        files[f"{name}/samples/{subject}/info"] = f"results/{name}/samples/{subject}/info.json"
    return files


def vocoder_model(wildcards):
    """The trained vocoder a job reads (its vocoder wildcard's, or its route's): DiffWave's; Griffin-Lim has none."""
    kind = wildcards.get("vocoder") or generator.vocoder_of(wildcards.get("route") or "waveform")
    return {"vocoder": f"results/{wildcards.dataset}/vocoder/diffwave/model.pt"} if kind == "diffwave" else {}


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
