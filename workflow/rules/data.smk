rule data:
    """Read the data file, treat missing codes, drop incomplete rows, add centred columns."""
    input:
        CONFIG["data"]["path"],
    output:
        table=PATHS["table"],
        summary=report(PATHS["data_summary"], category="Data",
                       caption="../report/data.rst"),
    params:
        spec=configuration.data_spec(CONFIG),
    log:
        log_path("data", "data"),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    script:
        "../scripts/data.py"
