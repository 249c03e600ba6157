"""Running the declared analysis through Snakemake, recovering from an interrupted run, and the
logging of one workflow job.

`hlm run` starts Snakemake's own command line with hlm's workflow and the config filled in, so
--profile, --until and --forceall mean what Snakemake's documentation says. While it runs it
holds .snakemake/hlm-run.lock (an flock, which the kernel releases when the process dies, even
by kill -9) with its pid in it. A run that takes that lock and finds a pid there knows the run
before it was killed, and removes the Snakemake lock that run left; holding the lock, any run
may also remove half-written temporary files in results/. Outputs Snakemake marked incomplete
are always rerun.
"""
import logging
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from ..errors import HlmError, UsageError
from ..resources import SNAKEFILE
from ..results.writers import leftover_temporary_files
from .config import DEFAULT_CONFIG, load_config
from .paths import PATHS

try:
    import fcntl
except ImportError:  # Windows: no flock, so no automatic recovery from a killed run
    fcntl = None

log = logging.getLogger(__name__)

RESULTS = Path(PATHS["manifest"]).parent  # results/: every file a run writes is under it
CLAIM = Path(".snakemake") / "hlm-run.lock"
SNAKEMAKE_LOCKS = Path(".snakemake") / "locks"  # Snakemake's lock files (`snakemake --unlock` removes them)
SNAKEMAKE_INCOMPLETE = Path(".snakemake") / "incomplete"  # one marker per output of an unfinished job


def snakefile(workdir="."):
    """The Snakefile of the folder the analysis runs in, else the one shipped with hlm."""
    local = Path(workdir) / "Snakefile"
    return local.resolve() if local.is_file() else SNAKEFILE


def run_workflow(config_path=DEFAULT_CONFIG, cores=None, dry_run=False, targets=(), workdir=".",
                 forceall=False, until=(), profile=None):
    """Run the analysis a config declares, through Snakemake's command line, in `workdir`.

    Checks the config first (a ConfigError stops everything before any fit); cores default to 2
    unless a profile is given (it may set them). Returns Snakemake's exit code: 0 when the
    workflow succeeded (or has nothing to do), 1 when a job failed.
    """
    workdir = Path(workdir).resolve()
    load_config(config_path, workdir)  # names the file as the user wrote it
    config_path = Path(config_path).resolve()
    if cores is None and profile is None:
        cores = 2
    command = snakemake_command(config_path, workdir, cores, dry_run, forceall, until, profile, targets)
    if dry_run:  # plans only: Snakemake takes no lock, so neither does hlm
        return _snakemake(command)
    with _claim(workdir) as (killed_pid, finished):
        _recover(command, workdir, killed_pid)
        code = _snakemake(command)
        if code < 0:  # Snakemake itself was killed: the pid stays in the claim, so the next run recovers
            log.warning("hlm run: Snakemake was stopped by signal %d; a plain 'hlm run' finishes the analysis", -code)
            return 1
        finished()
        return code


def snakemake_command(config_path, workdir, cores=2, dry_run=False, forceall=False, until=(),
                      profile=None, targets=()):
    """The `python -m snakemake ...` command line of one run."""
    command = [sys.executable, "-m", "snakemake", *targets, "--snakefile", str(snakefile(workdir)),
               "--directory", str(workdir), "--configfile", str(config_path),
               "--rerun-incomplete", "--show-failed-logs"]
    if cores is not None:
        command += ["--cores", str(cores)]
    if profile is not None:  # a folder given by its path, or a profile name Snakemake looks up
        command += ["--profile", str(Path(profile).resolve()) if Path(profile).is_dir() else profile]
    if dry_run:
        command.append("--dry-run")
    if forceall:
        command.append("--forceall")
    if until:
        command += ["--until", *until]
    return command


def _snakemake(command):
    """Run Snakemake, its output going straight to the terminal; its exit code."""
    process = subprocess.Popen(command)
    try:
        return process.wait()
    except KeyboardInterrupt:  # Snakemake got the Ctrl-C too: let it stop its jobs and clean up
        process.wait()
        raise


@contextmanager
def _claim(workdir):
    """Hold the folder's run lock for one run: yields the pid of a killed run before it (or None)
    and the function to call when this run has finished. UsageError when another hlm run holds it."""
    path = workdir / CLAIM
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as claim:
        if fcntl is None:
            yield None, lambda: None
            return
        try:
            fcntl.flock(claim, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            claim.seek(0)
            raise UsageError(f"another hlm run (pid {claim.read().strip() or '?'}) is working in "
                             f"{workdir}; wait for it to finish") from None
        claim.seek(0)
        killed_pid = claim.read().strip() or None
        _write(claim, str(os.getpid()))
        yield killed_pid, lambda: _write(claim, "")


def _write(handle, text):
    handle.seek(0)
    handle.truncate()
    handle.write(text)
    handle.flush()


def _recover(command, workdir, killed_pid):
    """Clear what an interrupted run left, and say in one line what was done."""
    done = []
    locked = killed_pid is not None and any((workdir / SNAKEMAKE_LOCKS).glob("*.lock"))
    if locked and subprocess.run([*command, "--unlock"], check=False, capture_output=True).returncode == 0:
        done.append("removed its Snakemake lock")
    temporary = leftover_temporary_files(workdir / RESULTS)
    for path in temporary:
        path.unlink()
    if temporary:
        done.append(f"removed {len(temporary)} half-written temporary file(s) in {RESULTS}/")
    incomplete = sum(len(files) for _, _, files in os.walk(workdir / SNAKEMAKE_INCOMPLETE))
    if incomplete:
        done.append(f"rerunning {incomplete} output(s) it left incomplete")
    if done:
        who = f"the previous run (pid {killed_pid})" if killed_pid else "a previous run"
        log.warning("hlm run: %s was interrupted: %s", who, "; ".join(done))


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
