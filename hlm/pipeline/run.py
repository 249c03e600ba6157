"""Running the declared analysis through Snakemake's API, and the logging of one workflow job.
"""
import logging
import sys
from contextlib import contextmanager
from pathlib import Path

from ..errors import HlmError
from ..resources import SNAKEFILE
from .config import DEFAULT_CONFIG, load_config


def snakefile(workdir="."):
    """The Snakefile of the folder the analysis runs in, else the one shipped with hlm."""
    local = Path(workdir) / "Snakefile"
    return local.resolve() if local.is_file() else SNAKEFILE


def run_workflow(config_path=DEFAULT_CONFIG, cores=2, dry_run=False, targets=(), workdir="."):
    """Run the analysis a config declares, through Snakemake's API, in `workdir`.

    Checks the config first (a ConfigError stops everything before any fit); returns 0 when
    the workflow succeeded (or has nothing to do), 1 when a job failed.
    """
    workdir = Path(workdir).resolve()
    config_path = Path(config_path)
    load_config(config_path, workdir)
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import (
        ConfigSettings,
        DAGSettings,
        OutputSettings,
        ResourceSettings,
    )
    settings = OutputSettings(dryrun=dry_run, show_failed_logs=True)
    logging.getLogger("snakemake").propagate = False  # Snakemake prints its own log, once
    with SnakemakeApi(settings) as api:
        try:
            workflow = api.workflow(
                resource_settings=ResourceSettings(cores=cores),
                config_settings=ConfigSettings(configfiles=[config_path.resolve()]),
                snakefile=snakefile(workdir),
                workdir=workdir)
            dag = workflow.dag(DAGSettings(targets=frozenset(targets)))
            dag.execute_workflow(executor="dryrun" if dry_run else "local")
        except Exception as exc:  # Snakemake reports its own errors; we only set the exit code
            api.print_exception(exc)
            return 1
    return 0


@contextmanager
def job_log(path):
    """Send logging, warnings and any error of a workflow job to its log file.

    A user mistake (HlmError) also prints one line to stderr and exits with code 2; anything
    else is logged with its traceback and re-raised.
    """
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    try:
        yield
    except HlmError as exc:
        root.error("%s", exc)
        print(f"hlm: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    except Exception:
        root.exception("the job failed")
        raise
    finally:
        logging.captureWarnings(False)
        root.removeHandler(handler)
        handler.close()
