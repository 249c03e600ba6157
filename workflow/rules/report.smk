rule manifest:
    """results/manifest.json: the checked config (defaults filled in) and every result file."""
    output:
        PATHS["manifest"],
    params:
        config=CONFIG,
        files=FILES,
    log:
        log_path("report", "manifest"),
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../scripts/manifest.py"


if FILES["report"]:  # report.formats may be empty: no report

    rule report:
        """The thesis report (HTML, Markdown, Word tables) from every result."""
        input:
            manifest=PATHS["manifest"],
            results=analysis_targets(),
            figures=list(FILES["figures"].values()),
        output:
            **{fmt: report(path, category="Report") if fmt == "html" else path
               for fmt, path in FILES["report"].items()},
        log:
            log_path("report", "report"),
        threads: 1
        resources:
            mem_mb=2000,
            runtime=15,
        script:
            "../scripts/report.py"
