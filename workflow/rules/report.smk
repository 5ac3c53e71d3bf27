rule report:
    """results/report.html: one self-contained page with every dataset's evidence."""
    input:
        unpack(report_inputs),
    output:
        "results/report.html",
    params:
        datasets=DATASETS,
        routes=ROUTES,
        copy_synthesis=COPY_SYNTHESIS,
        steps=STEPS,
        mel=config["mel"],
        report=config["report"],
        code=code_hash("report.py", "templates/report.html.j2"),
    log:
        "results/logs/report.log",
    benchmark:
        "results/benchmarks/report.tsv"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/report.py"
