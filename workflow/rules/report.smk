rule manifest:
    """results/manifest.json: the config files read, the checked config (defaults filled in)
    and every result file."""
    output:
        PATHS["manifest"],
    params:
        configfiles=CONFIG_FILES,
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


FIGURE_INPUTS = [path for kind in ("figure_files", "power_figures") for files in FILES[kind].values()
                 for path in files.values()]


if FILES["report"]:  # report.formats may be empty: no report

    rule report:
        """The thesis report from every result, in the config's language: report.html (one
        self-contained file), report.md (pandoc-ready, figures in results/report/figures/) and
        tables.docx (three-line tables in Word)."""
        input:
            manifest=PATHS["manifest"],
            results=analysis_targets(),
            figures=FIGURE_INPUTS,
            data=CONFIG["data"]["path"],
        output:
            **{fmt: report(path, category="Report") if fmt == "html" else path
               for fmt, path in FILES["report"].items()},
            **({"figures": directory(PATHS["report_figures"])}
               if "md" in FILES["report"] and FIGURE_INPUTS else {}),
        log:
            log_path("report", "report"),
        threads: 1
        resources:
            mem_mb=2000,
            runtime=15,
        script:
            "../scripts/report.py"
