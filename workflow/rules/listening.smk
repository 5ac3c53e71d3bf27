# The blind listening test (cry_diffusion.listening, docs/listening.md): a study per dataset, built from the
# held-out real segments and the generated clips, then its answers analysed for the report.

rule listening:
    """A blind listening test: stimuli under opaque names, loudness-matched; each rater's plan; the page."""
    input:
        npy="results/{dataset}/segments.npy",
        table="results/{dataset}/segments.csv",
        samples=lambda w: [f"results/{w.dataset}/samples/{system}/samples.npy" for system in LISTENING_SYSTEMS],
        infos=lambda w: [f"results/{w.dataset}/samples/{system}/info.json" for system in LISTENING_SYSTEMS],
    output:
        page="results/listening/{dataset}/index.html",
        plan="results/listening/{dataset}/plan.json",
        trials="results/listening/{dataset}/trials.js",
        stimuli=directory("results/listening/{dataset}/stimuli"),
    params:
        study={k: v for k, v in LISTENING.items() if k not in ("enabled", "steps", "analysis")},
        systems=LISTENING_SYSTEMS,
        code=code_hash("listening.py", "templates/listening.html.j2"),
    log:
        "results/logs/{dataset}/listening.log",
    benchmark:
        "results/benchmarks/{dataset}/listening.tsv"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/listening.py"


rule listening_results:
    """What the listeners said, per system, with intervals, beside the automatic metrics' rankings."""
    input:
        plan="results/listening/{dataset}/plan.json",
        evaluations=lambda w: [f"results/{w.dataset}/evaluation/{system}.json" for system in LISTENING_SYSTEMS],
        answers=answers_database,
    output:
        json="results/listening/{dataset}/results.json",
        png="results/listening/{dataset}/results.png",
    params:
        analysis=LISTENING["analysis"],
        systems=LISTENING_SYSTEMS,
        code=code_hash("listening_results.py"),
    log:
        "results/logs/{dataset}/listening_results.log",
    benchmark:
        "results/benchmarks/{dataset}/listening_results.tsv"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/listening_results.py"
