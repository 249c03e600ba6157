rule compare:
    """Likelihood-ratio test of declared models (lme4's anova; REML fits refitted by ML), on
    the fits restored from their records."""
    input:
        models=lambda wildcards: [PATHS["model"].format(model=m) for m in COMPARISONS[wildcards.comparison]],
        tables=lambda wildcards: [PATHS["table"].format(model=m) for m in COMPARISONS[wildcards.comparison]],
    output:
        report(PATHS["comparison"], category="Comparisons", caption="../report/comparison.rst"),
    log:
        log_path("compare", "{comparison}"),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    script:
        "../scripts/compare.py"
