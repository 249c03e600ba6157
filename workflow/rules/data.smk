checkpoint data:
    """Read the data file, treat missing codes, drop incomplete rows, add centred columns; write
    each model's table (the columns it uses, on the analysed rows) and the summary.

    The data file's SHA-256 is a param, so that new content reruns the step even when the
    file keeps its old modification time (cp -p, rsync -t, an archive restored).
    A checkpoint, so that Snakemake looks at the DAG again once it has run: a fit job whose
    table was rewritten with the same content (the checksum its record's metadata holds, for
    files up to --max-checksum-file-size) is then skipped. As a plain rule, every job
    downstream of a rerun job would rerun in the same invocation."""
    input:
        CONFIG["data"]["path"],
    output:
        tables=[PATHS["table"].format(model=m) for m in SPECS],
        summary=report(PATHS["data_summary"], category="Data",
                       caption="../report/data.rst"),
    params:
        spec=configuration.data_spec(CONFIG),
        sha256=file_sha256(CONFIG["data"]["path"]),  # content, not mtime: `cp -p` of edited data reruns
    log:
        log_path("data", "data"),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    script:
        "../scripts/data.py"
