# Does synthetic data help? (cry_diffusion.utility, docs/evaluation.md): a cry classifier trained on real
# recordings, on the run's generated clips and on both, tested on held-out real recordings; and, for each
# withheld category, a second generator that never saw it.


rule utility_pool:
    """Generated clips of every category, as many as the utility grid can draw at once, from the run's generator."""
    input:
        unpack(utility_model),
        table="results/{dataset}/segments.csv",
    output:
        npy="results/{dataset}/utility/pool.npy",
        info="results/{dataset}/utility/pool.json",
    params:
        # only what sets the pool's size: the fractions, seeds and classifier are the utility rule's
        utility={k: UTILITY[k] for k in ("ratios", "balanced")},
        route=UTILITY_ROUTE,
        sampling=lambda w: sampling_params(w, steps=UTILITY_STEPS),
        vocoder=utility_vocoder,
        seconds=clip_seconds,
        device=DEVICE,
        code=code_hash("utility_pool.py"),
    threads: 8
    resources:
        gpu=1,
    log:
        "results/logs/{dataset}/utility_pool.log",
    benchmark:
        "results/benchmarks/{dataset}/utility_pool.tsv"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/utility_pool.py"


rule withheld:
    """For each withheld category (utility.withhold): the run's generator trained again without it, and clips of it."""
    input:
        # the run's own generator is not needed, only a trained vocoder: the two trainings need not wait on each other
        unpack(lambda w: {k: v for k, v in utility_model(w).items() if k == "vocoder"}),
        table="results/{dataset}/segments.csv",
        data=lambda w: f"results/{w.dataset}/{'segments.npy' if UTILITY_ROUTE == 'waveform' else 'mels.npy'}",
    output:
        directory("results/{dataset}/utility/withheld"),
    params:
        withhold=UTILITY["withhold"],
        route=UTILITY_ROUTE,
        checkpoints=lambda w: f"results/{w.dataset}/utility/checkpoints",
        model=lambda w: (config["model"] if UTILITY_ROUTE == "waveform" else config["mel_prior"]["model"]),
        diffusion=lambda w: (config["diffusion"] if UTILITY_ROUTE == "waveform" else config["mel_prior"]["diffusion"]),
        train=lambda w: tracked(route_settings(UTILITY_ROUTE)[0]),
        cadence=cadence(route_settings(UTILITY_ROUTE)[0]),
        mel=config["mel"],
        sampling=lambda w: sampling_params(w, steps=UTILITY_STEPS),
        vocoder=utility_vocoder,
        seconds=clip_seconds,
        device=DEVICE,
        code=code_hash("withheld.py"),
    threads: 8
    resources:
        gpu=1,
    log:
        "results/logs/{dataset}/withheld.log",
    benchmark:
        "results/benchmarks/{dataset}/withheld.tsv"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/withheld.py"


rule utility:
    """TRTR, TSTR and real plus generated at each ratio and real-data fraction; the unseen categories; utility.json."""
    input:
        npy="results/{dataset}/segments.npy",
        mels="results/{dataset}/mels.npy",
        table="results/{dataset}/segments.csv",
        pool="results/{dataset}/utility/pool.npy",
        pool_info="results/{dataset}/utility/pool.json",
        withheld="results/{dataset}/utility/withheld",
        bundle="results/{dataset}/embedding.pt",
        reference="results/{dataset}/evaluation/reference.npz",
    output:
        json="results/{dataset}/utility.json",
        png="results/{dataset}/figures/utility.png",
        pdf="results/{dataset}/figures/utility.pdf",
    params:
        utility=UTILITY,
        evaluation=evaluation_params,
        mel=config["mel"],
        device=DEVICE,
        code=code_hash("utility.py"),
    threads: 2
    log:
        "results/logs/{dataset}/utility.log",
    benchmark:
        "results/benchmarks/{dataset}/utility.tsv"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/utility.py"
