rule diagnostics:
    """Residual diagnostics of a model, as sjPlot's plot_model(type = "diag"): A level-1 QQ,
    B residual density vs normal, C residuals vs fitted, D QQ of each random effect."""
    input:
        model=PATHS["model"],
        residuals=PATHS["residuals"],
        ranef=PATHS["ranef"],
    output:
        report(PATHS["figure"], category="Diagnostics", caption="../report/diagnostics.rst"),
    log:
        log_path("diagnostics"),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    script:
        "../scripts/diagnostics.py"
