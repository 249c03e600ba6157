def comparison_inputs(kind):
    """The records or tables of a comparison's models."""
    return lambda wildcards: [PATHS[kind].format(model=m) for m in COMPARISONS[wildcards.comparison]]


def bootstrap_chunk_files(wildcards):
    """The chunks of a comparison with method: bootstrap (none for a plain LRT)."""
    bootstrap = BOOTSTRAPS[wildcards.comparison]
    return [PATHS["comparison_chunk"].format(comparison=wildcards.comparison, start=start)
            for start, _ in configuration.bootstrap_chunks(bootstrap)] if bootstrap else []


rule compare:
    """Likelihood-ratio test of declared models (lme4's anova; REML fits refitted by ML), on
    the fits restored from their records; with method: bootstrap, PBmodcomp's p-value from the
    bootstrap chunks beside it."""
    input:
        models=comparison_inputs("model"),
        tables=comparison_inputs("table"),
        chunks=bootstrap_chunk_files,
    output:
        report(PATHS["comparison"], category="Comparisons", caption="../report/comparison.rst"),
    params:
        bootstrap=lambda wildcards: BOOTSTRAPS[wildcards.comparison],
    log:
        log_path("compare", "{comparison}"),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    script:
        "../scripts/compare.py"


rule compare_chunk:
    """Replicates [start, stop) of a parametric bootstrap comparison (pbkrtest's PBmodcomp):
    simulate from the smaller model, refit both; replicate i depends only on (seed, name, i)."""
    input:
        models=comparison_inputs("model"),
        tables=comparison_inputs("table"),
    output:
        PATHS["comparison_chunk"],
    params:
        bootstrap=lambda wildcards: BOOTSTRAPS[wildcards.comparison],
        stop=lambda wildcards: dict(configuration.bootstrap_chunks(BOOTSTRAPS[wildcards.comparison]))[
            int(wildcards.start)],
    wildcard_constraints:
        comparison=one_of([name for name, bootstrap in BOOTSTRAPS.items() if bootstrap]),
        start=r"\d+",
    log:
        log_path("compare_chunk", "{comparison}/{start}"),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
    script:
        "../scripts/compare_chunk.py"
