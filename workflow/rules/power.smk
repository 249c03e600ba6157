from hlm.analysis.power import chunks as power_chunks

POWER = configuration.power_entries(CONFIG)  # power.<name> with its model's ddf
# power.<name> -> {(size, start): stop}: its jobs, in hlm.analysis.power's order
POWER_CHUNKS = {name: {(size, start): stop for size, start, stop in
                       power_chunks(configuration.power_spec(name, entry))}
                for name, entry in POWER.items()}


def power_model_file(kind):
    """The record or the table of the model a power analysis simulates from."""
    return lambda wildcards: PATHS[kind].format(model=CONFIG["power"][wildcards.power]["model"])


def power_chunk_files(wildcards):
    return [PATHS["power_chunk"].format(power=wildcards.power, size=size, start=start)
            for size, start in POWER_CHUNKS[wildcards.power]]


rule power_chunk:
    """Replicates [start, stop) of a power analysis at one size: simulate from the fit restored
    from the model's record, refit, test the term. Replicate i's random numbers depend only on
    (seed, name, size, i), so the chunks can run anywhere, in any order."""
    input:
        model=power_model_file("model"),
        table=power_model_file("table"),
    output:
        PATHS["power_chunk"],
    params:
        entry=lambda wildcards: POWER[wildcards.power],
        stop=lambda wildcards: POWER_CHUNKS[wildcards.power][int(wildcards.size), int(wildcards.start)],
    wildcard_constraints:
        power=one_of(POWER_CHUNKS),
        size=r"\d+",
        start=r"\d+",
    log:
        log_path("power_chunk", "{power}/{size}_{start}"),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
    script:
        "../scripts/power_chunk.py"


rule power:
    """The power curve of an analysis (power per size, Clopper–Pearson 95% intervals, failed
    refits counted) gathered from its chunks."""
    input:
        power_chunk_files,
    output:
        report(PATHS["power"], category="Power"),
    params:
        entry=lambda wildcards: POWER[wildcards.power],
    wildcard_constraints:
        power=one_of(POWER_CHUNKS),
    log:
        log_path("power", "{power}"),
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../scripts/power_gather.py"


rule power_figure:
    """The power curve as a figure (power by size, 95% intervals, the alpha and 0.80 lines)."""
    input:
        PATHS["power"],
    output:
        svg=PATHS["power_figure"].replace("{ext}", "svg"),
        png=report(PATHS["power_figure"].replace("{ext}", "png"), category="Power"),
    params:
        language=CONFIG["report"]["language"],
    wildcard_constraints:
        power=one_of(POWER_CHUNKS),
    log:
        log_path("power_figure", "{power}"),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    script:
        "../scripts/power_figure.py"
