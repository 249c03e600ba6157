INTERVALS = configuration.interval_options(CONFIG)


rule intervals:
    """Bootstrap percentile intervals of a model with `intervals: bootstrap` (lme4's
    confint(bootMer(m, nsim), type = "perc")): its fixed effects and variance components, from
    refits of the fit restored from its record. One job: bootMer's replicates share one random
    stream, and a model's thousand refits take seconds to minutes."""
    input:
        model=PATHS["model"],
        table=PATHS["table"],
    output:
        PATHS["intervals"],
    params:
        options=lambda wildcards: INTERVALS[wildcards.model],
    wildcard_constraints:
        model=one_of(INTERVALS),
    log:
        log_path("intervals"),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
    script:
        "../scripts/intervals.py"
