from hlm.pipeline.paths import DIAGNOSTIC_FIGURES, SIMPLE_SLOPES_FILES, TRAJECTORY_FILES

SLOPES_MODELS = [m for m in CONFIG["diagnostics"] if "simple_slopes_json" in FILES["figure_files"][m]]
TRAJECTORY_MODELS = [m for m in CONFIG["diagnostics"] if "trajectory_json" in FILES["figure_files"][m]]


rule diagnostics:
    """Figures of a model: residual diagnostics as sjPlot's plot_model(type = "diag") (A level-1
    QQ, B residual density vs normal, C residuals vs fitted, D QQ of each random effect with
    95% intervals; for a GLMM DHARMa's simulated scaled residuals instead) and a caterpillar plot
    of the random effects. SVG for the HTML report, PNG
    for Markdown; the labels in the report's language."""
    input:
        residuals=PATHS["residuals"],
        ranef=PATHS["ranef"],
        model=PATHS["model"],
        table=PATHS["table"],
    output:
        **{name: report(path, category="Diagnostics", subcategory="{model}",
                        caption="../report/diagnostics.rst") if name.endswith("_png") else path
           for name, path in paths.FIGURE_FILES.items() if name in DIAGNOSTIC_FIGURES},
    params:
        language=CONFIG["report"]["language"],
    log:
        log_path("diagnostics"),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    script:
        "../scripts/diagnostics.py"


rule simple_slopes:
    """Simple slopes of a model's interaction (reghelper::simple_slopes): the predictor's slope
    at the moderator's mean - 1 SD, mean and mean + 1 SD, tested with the model's df method, on
    the fit restored from its record."""
    input:
        model=PATHS["model"],
        table=PATHS["table"],
    output:
        **{name: report(path, category="Diagnostics", subcategory="{model}",
                        caption="../report/diagnostics.rst") if name.endswith("_png") else path
           for name, path in paths.FIGURE_FILES.items() if name in SIMPLE_SLOPES_FILES},
    wildcard_constraints:
        model=one_of(SLOPES_MODELS),
    params:
        language=CONFIG["report"]["language"],
    log:
        log_path("simple_slopes"),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        "../scripts/simple_slopes.py"


rule trajectory:
    """Repeated measures (data.time): the observed trajectories of a sample of level-2 units
    and the fitted mean curve of a model with time among its predictors, from the fit restored
    from its record; the numbers in JSON."""
    input:
        model=PATHS["model"],
        table=PATHS["table"],
    output:
        **{name: report(path, category="Diagnostics", subcategory="{model}",
                        caption="../report/diagnostics.rst") if name.endswith("_png") else path
           for name, path in paths.FIGURE_FILES.items() if name in TRAJECTORY_FILES},
    wildcard_constraints:
        model=one_of(TRAJECTORY_MODELS),
    params:
        time=CONFIG["data"].get("time"),
        unit=CONFIG["data"]["levels"][0],
        language=CONFIG["report"]["language"],
    log:
        log_path("trajectory"),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    script:
        "../scripts/trajectory.py"
