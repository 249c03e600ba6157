rule derive:
    """ICC, variance explained and contextual effects, in one file. Its params are the specs
    of the models it uses, so editing another model's formula leaves it alone."""
    input:
        table=PATHS["table"],
        models=[PATHS["model"].format(model=m) for m in DERIVED_MODELS],
    output:
        report(PATHS["derived"], category="Derived statistics", caption="../report/derived.rst"),
    params:
        specs={m: SPECS[m] for m in DERIVED_MODELS},
        icc=CONFIG["icc"],
        variance_explained=CONFIG["variance_explained"],
        contextual=configuration.contextual_specs(CONFIG),
    log:
        log_path("derive", "derived"),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    script:
        "../scripts/derive.py"
