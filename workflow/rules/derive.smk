rule icc:
    """Intraclass correlation tau00 / (tau00 + sigma^2) of a model (the null model's, usually)."""
    input:
        table=PATHS["table"],
        model=PATHS["model"],
    output:
        PATHS["icc"],
    params:
        spec=lambda wildcards: SPECS[wildcards.model],
    log:
        log_path("icc"),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        "../scripts/icc.py"


rule variance_explained:
    """Proportional reduction of each variance component from an old model to a new one."""
    input:
        table=PATHS["table"],
        models=lambda wildcards: [PATHS["model"].format(model=m)
                                  for m in VARIANCE_EXPLAINED[wildcards.pair]],
    output:
        PATHS["variance_explained"],
    params:
        specs=lambda wildcards: [SPECS[m] for m in VARIANCE_EXPLAINED[wildcards.pair]],
    log:
        log_path("variance_explained", "{pair}"),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        "../scripts/variance_explained.py"


rule contextual:
    """Within, between and contextual effects of a group-mean split predictor."""
    input:
        table=PATHS["table"],
        model=PATHS["model"],
    output:
        PATHS["contextual"],
    params:
        spec=lambda wildcards: SPECS[wildcards.model],
        within=lambda wildcards: CONTEXTUAL[wildcards.model]["within"],
        between=lambda wildcards: CONTEXTUAL[wildcards.model]["between"],
    log:
        log_path("contextual"),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        "../scripts/contextual.py"


rule derived_summary:
    """All derived statistics in one file: icc, variance_explained, contextual."""
    input:
        icc=list(FILES["derived"]["icc"].values()),
        variance_explained=list(FILES["derived"]["variance_explained"].values()),
        contextual=list(FILES["derived"]["contextual"].values()),
    output:
        report(PATHS["derived_summary"], category="Derived statistics",
               caption="../report/derived.rst"),
    log:
        log_path("derived", "summary"),
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../scripts/derived_summary.py"
