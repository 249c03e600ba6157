rule fit:
    """Fit one model, the only time it is optimized; its spec (formula, REML, optimizer, ddf,
    control) is a param and its table holds only its columns, so editing one model's entry in
    the config refits only that model and what uses it."""
    input:
        table=PATHS["table"],
    output:
        model=report(PATHS["model"], category="Models", subcategory="{model}",
                     caption="../report/model.rst"),
        residuals=PATHS["residuals"],
        ranef=PATHS["ranef"],
    params:
        spec=lambda wildcards: SPECS[wildcards.model],
    log:
        log_path("fit"),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    script:
        "../scripts/fit.py"
