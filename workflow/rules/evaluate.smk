rule embedding:
    """A small CNN trained to tell the categories of the training split apart; its penultimate layer embeds audio for FAD."""
    input:
        mels="results/{dataset}/mels.npy",
        table="results/{dataset}/segments.csv",
    output:
        bundle="results/{dataset}/embedding.pt",
        info="results/{dataset}/embedding.json",
    params:
        embedding=config["evaluation"]["embedding"],
        mel=config["mel"],
        device=DEVICE,
        code=code_hash("embedding.py"),
    threads: 2
    log:
        "results/logs/{dataset}/embedding.log",
    benchmark:
        "results/benchmarks/{dataset}/embedding.tsv"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/embedding.py"


rule reference:
    """The real side of every comparison, once per dataset: embeddings, features, k-means bins, copy thresholds, the real floor."""
    input:
        bundle="results/{dataset}/embedding.pt",
        npy="results/{dataset}/segments.npy",
        mels="results/{dataset}/mels.npy",
        table="results/{dataset}/segments.csv",
    output:
        "results/{dataset}/evaluation/reference.npz",
    params:
        evaluation=evaluation_params,
        # the real floor is scored on as many clips as are generated, so FAD's small-sample bias matches
        n=config["sampling"]["n_samples"],
        # and the log-mel copy threshold is worked out for clips as long as the generated ones
        seconds=clip_seconds,
        device=DEVICE,
        code=code_hash("reference.py"),
    threads: 2
    log:
        "results/logs/{dataset}/reference.log",
    benchmark:
        "results/benchmarks/{dataset}/reference.tsv"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/reference.py"


rule evaluate:
    """Every metric of one set -- generated at one step count, or a reference (real, noise, tones) -- against held-out real audio."""
    input:
        unpack(evaluate_inputs),
    output:
        "results/{dataset}/evaluation/{subject}.json",
    wildcard_constraints:
        subject=r"(waveform|mel-[a-z_]+)-steps-\d+|copy-synthesis-[a-z_]+|real|noise|tones",
    params:
        evaluation=evaluation_params,
        # the baselines are scored on as many clips as are generated, so FAD's small-sample bias matches
        n=config["sampling"]["n_samples"],
        device=DEVICE,
        code=code_hash("evaluate.py"),
    threads: 2
    log:
        "results/logs/{dataset}/evaluate-{subject}.log",
    benchmark:
        "results/benchmarks/{dataset}/evaluate-{subject}.tsv"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/evaluate.py"


rule tradeoff:
    """Time to quality, for one route: every step count against its full chain by a paired bootstrap, and the fastest no-worse one."""
    input:
        evaluations=lambda w: [f"results/{w.dataset}/evaluation/{generator.system(w.route, s)}.json" for s in STEPS],
        reference="results/{dataset}/evaluation/reference.npz",
    output:
        "results/{dataset}/evaluation/tradeoff-{route}.json",
    params:
        evaluation=evaluation_params,
        steps=STEPS,
        base=lambda w: (config["diffusion"] if w.route == "waveform" else config["mel_prior"]["diffusion"])["steps"],
        code=code_hash("tradeoff.py"),
    log:
        "results/logs/{dataset}/tradeoff-{route}.log",
    benchmark:
        "results/benchmarks/{dataset}/tradeoff-{route}.tsv"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/tradeoff.py"


rule progress:
    """Quality against training time, for one route: each snapshot (train.snapshot_every) sampled and scored as the final model is."""
    input:
        unpack(vocoder_model),
        snapshots=lambda w: f"results/{w.dataset}/{route_settings(w.route)[1]}",
        bundle="results/{dataset}/embedding.pt",
        reference="results/{dataset}/evaluation/reference.npz",
        references=lambda w: [f"results/{w.dataset}/evaluation/{r}.json" for r in REFERENCES],
    output:
        json="results/{dataset}/evaluation/progress-{route}.json",
        png="results/{dataset}/figures/progress-{route}.png",
        pdf="results/{dataset}/figures/progress-{route}.pdf",
    params:
        # the full chain's settings (the tradeoff's baseline): a snapshot's clips compare with the final model's
        sampling=lambda w: sampling_params(w, steps=max(STEPS)),
        vocoder=lambda w: vocoder_settings(generator.vocoder_of(w.route)) if w.route != "waveform" else None,
        seconds=clip_seconds,
        device=DEVICE,
        code=code_hash("progress.py"),
    threads: 8
    resources:
        gpu=1,
    log:
        "results/logs/{dataset}/progress-{route}.log",
    benchmark:
        "results/benchmarks/{dataset}/progress-{route}.tsv"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/progress.py"


rule figures:
    """The paper's figures (real against generated mels) and ours (feature histograms, quality against steps), PNG and PDF."""
    input:
        unpack(figure_inputs),
    output:
        directory("results/figures"),
    params:
        datasets=DATASETS,
        routes=ROUTES,
        steps=STEPS,
        mel=config["mel"],
        code=code_hash("figures.py"),
    log:
        "results/logs/figures.log",
    benchmark:
        "results/benchmarks/figures.tsv"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/figures.py"
