rule embedded_corpus:
    """The synthetic infant-cry corpus: five category folders of WAV files at mixed rates."""
    output:
        directory(config["embedded_corpus"]["root"]),
    params:
        corpus=config["embedded_corpus"],
        code=code_hash("embedded_corpus.py"),
    log:
        "results/logs/embedded_corpus.log",
    benchmark:
        "results/benchmarks/embedded_corpus.tsv"
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/embedded_corpus.py"


rule ingest:
    """Every file of the dataset decoded once and judged, every annotated region checked: results/NAME/manifest.csv."""
    input:
        corpus_input,
    output:
        "results/{dataset}/manifest.csv",
    params:
        source=source_params,
        ingest=config["ingest"],
        listing=corpus_listing,
        code=code_hash("ingest.py"),
    threads: 2
    log:
        "results/logs/{dataset}/ingest.log",
    benchmark:
        "results/benchmarks/{dataset}/ingest.tsv"
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/ingest.py"


rule segment:
    """Accepted files (or annotated regions) at 16 kHz mono, cut and packed: segments.npy + segments.csv."""
    input:
        "results/{dataset}/manifest.csv",
    output:
        npy="results/{dataset}/segments.npy",
        table="results/{dataset}/segments.csv",
        summary="results/{dataset}/segments.json",
    params:
        segment=segment_params,
        kind=lambda w: dataset(w)["kind"],
        code=code_hash("segment.py"),
    threads: 2
    log:
        "results/logs/{dataset}/segment.log",
    benchmark:
        "results/benchmarks/{dataset}/segment.tsv"
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/segment.py"


rule mel:
    """80-band log-mel spectrograms of every segment, and a figure of a few."""
    input:
        npy="results/{dataset}/segments.npy",
        table="results/{dataset}/segments.csv",
    output:
        mels="results/{dataset}/mels.npy",
        figure="results/{dataset}/figures/mels.png",
    params:
        mel=config["mel"],
        code=code_hash("mel.py"),
    log:
        "results/logs/{dataset}/mel.log",
    benchmark:
        "results/benchmarks/{dataset}/mel.tsv"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/mel.py"


rule data_figures:
    """Duration and category histograms of one dataset."""
    input:
        manifest="results/{dataset}/manifest.csv",
        table="results/{dataset}/segments.csv",
    output:
        durations="results/{dataset}/figures/durations.png",
        categories="results/{dataset}/figures/categories.png",
    params:
        code=code_hash("data_figures.py"),
    log:
        "results/logs/{dataset}/data_figures.log",
    benchmark:
        "results/benchmarks/{dataset}/data_figures.tsv"
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/data_figures.py"
