rule derive:
    """ICC and design effects, variance explained and contextual effects, in one file, on the
    fits restored from their records. Its inputs are the records and tables of the models it
    uses, so editing another model leaves it alone."""
    input:
        models=[PATHS["model"].format(model=m) for m in DERIVED_MODELS],
        tables=[PATHS["table"].format(model=m) for m in DERIVED_MODELS],
    output:
        report(PATHS["derived"], category="Derived statistics", caption="../report/derived.rst"),
    params:
        icc=CONFIG["icc"],
        variance_explained=CONFIG["variance_explained"],
        contextual=configuration.contextual_specs(CONFIG),
        levels=CONFIG["data"]["levels"],
    log:
        log_path("derive", "derived"),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    script:
        "../scripts/derive.py"
