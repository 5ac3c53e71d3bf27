# The mel route (generators: [mel]): a diffusion prior over the mel stage's log-mels, and vocoders that make
# audio of its samples. Its sets are named mel-<vocoder>-steps-S; copy-synthesis-<vocoder> is each vocoder's ceiling.


rule train_prior:
    """The mel prior on the training split's log-mels; resumes from results/NAME/mel_prior/checkpoints/ if killed."""
    input:
        mels="results/{dataset}/mels.npy",
        table="results/{dataset}/segments.csv",
    output:
        model="results/{dataset}/mel_prior/model.pt",
        loss="results/{dataset}/mel_prior/loss.csv",
        # mel_prior.train.snapshot_every: the EMA prior along the way, for the progress rule (empty when 0)
        snapshots=directory("results/{dataset}/mel_prior/snapshots"),
    params:
        model=config["mel_prior"]["model"],
        diffusion=config["mel_prior"]["diffusion"],
        train=tracked(config["mel_prior"]["train"]),
        cadence=cadence(config["mel_prior"]["train"]),
        mel=config["mel"],
        device=DEVICE,
        checkpoints=lambda w: f"results/{w.dataset}/mel_prior/checkpoints",
        code=code_hash("train_prior.py"),
    threads: 8
    resources:
        gpu=config["mel_prior"]["train"]["gpus"],
    log:
        "results/logs/{dataset}/train_prior.log",
    benchmark:
        "results/benchmarks/{dataset}/train_prior.tsv"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/train_prior.py"


rule sample_prior:
    """N generated log-mels from the mel prior at one step count (the sampler chosen from the count, as for DiffWave)."""
    input:
        model="results/{dataset}/mel_prior/model.pt",
    output:
        mels="results/{dataset}/mel_prior/samples/steps-{steps}/mels.npy",
        info="results/{dataset}/mel_prior/samples/steps-{steps}/info.json",
    params:
        sampling=sampling_params,
        seconds=clip_seconds,
        device=DEVICE,
        code=code_hash("sample_prior.py"),
    threads: 8
    resources:
        gpu=1,
    log:
        "results/logs/{dataset}/sample_prior-{steps}.log",
    benchmark:
        "results/benchmarks/{dataset}/sample_prior-{steps}.tsv"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/sample_prior.py"


rule train_vocoder:
    """DiffWave's mel-conditioned vocoder on the training split's (audio, log-mel) pairs; resumable like train."""
    input:
        npy="results/{dataset}/segments.npy",
        mels="results/{dataset}/mels.npy",
        table="results/{dataset}/segments.csv",
    output:
        model="results/{dataset}/vocoder/diffwave/model.pt",
        loss="results/{dataset}/vocoder/diffwave/loss.csv",
    params:
        model=config["vocoder"]["diffwave"]["model"],
        diffusion=config["vocoder"]["diffwave"]["diffusion"],
        train=tracked(config["vocoder"]["diffwave"]["train"]),
        cadence=cadence(config["vocoder"]["diffwave"]["train"]),
        mel=config["mel"],
        device=DEVICE,
        checkpoints=lambda w: f"results/{w.dataset}/vocoder/diffwave/checkpoints",
        code=code_hash("train_vocoder.py"),
    threads: 8
    resources:
        gpu=config["vocoder"]["diffwave"]["train"]["gpus"],
    log:
        "results/logs/{dataset}/train_vocoder.log",
    benchmark:
        "results/benchmarks/{dataset}/train_vocoder.tsv"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/train_vocoder.py"


rule vocode:
    """The prior's log-mels at one step count made audio by one vocoder: a generated set like the waveform route's."""
    input:
        unpack(vocoder_model),
        mels="results/{dataset}/mel_prior/samples/steps-{steps}/mels.npy",
        info="results/{dataset}/mel_prior/samples/steps-{steps}/info.json",
    output:
        npy="results/{dataset}/samples/mel-{vocoder}-steps-{steps}/samples.npy",
        info="results/{dataset}/samples/mel-{vocoder}-steps-{steps}/info.json",
        wav=directory("results/{dataset}/samples/mel-{vocoder}-steps-{steps}/wav"),
    wildcard_constraints:
        vocoder="griffin_lim",  # no network: the CPU's
    params:
        vocoder=lambda w: vocoder_settings(w.vocoder),
        seconds=clip_seconds,
        seed=config["sampling"]["seed"],
        device=DEVICE,
        code=code_hash("vocode.py"),
    threads: 8
    log:
        "results/logs/{dataset}/vocode-{vocoder}-{steps}.log",
    benchmark:
        "results/benchmarks/{dataset}/vocode-{vocoder}-{steps}.tsv"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/vocode.py"


use rule vocode as vocode_trained with:
    wildcard_constraints:
        vocoder="diffwave",  # a network: on the GPU
    resources:
        gpu=1,


rule copy_synthesis:
    """The real floor's held-out clips through their log-mels and one vocoder: the vocoder's ceiling, scored as a set."""
    input:
        unpack(vocoder_model),
        reference="results/{dataset}/evaluation/reference.npz",
    output:
        npy="results/{dataset}/samples/copy-synthesis-{vocoder}/samples.npy",
        info="results/{dataset}/samples/copy-synthesis-{vocoder}/info.json",
        wav=directory("results/{dataset}/samples/copy-synthesis-{vocoder}/wav"),
    wildcard_constraints:
        vocoder="griffin_lim",
    params:
        vocoder=lambda w: vocoder_settings(w.vocoder),
        mel=config["mel"],
        seed=config["sampling"]["seed"],
        device=DEVICE,
        code=code_hash("copy_synthesis.py"),
    threads: 8
    log:
        "results/logs/{dataset}/copy_synthesis-{vocoder}.log",
    benchmark:
        "results/benchmarks/{dataset}/copy_synthesis-{vocoder}.tsv"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/copy_synthesis.py"


use rule copy_synthesis as copy_synthesis_trained with:
    wildcard_constraints:
        vocoder="diffwave",
    resources:
        gpu=1,
