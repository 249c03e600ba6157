"""The shipped analysis on a real Slurm cluster: `snakemake --profile profiles/slurm` on a one-node
cluster started on this machine (tests/slurm_cluster.py), checked against Slurm's accounting
records and, byte for byte, against a local run.

Skipped where Slurm is not installed (`bash .ci/install-slurm` installs it) or cannot start.
"""
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, copy_project, ok, snakemake
from slurm_cluster import SlurmCluster, SlurmError, missing_programs


@pytest.fixture
def cluster(tmp_path):
    missing = missing_programs()
    if missing:
        pytest.skip(f"Slurm is not installed ({', '.join(missing)} missing; bash .ci/install-slurm)")
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="pip install -e '.[slurm]'")
    cluster = SlurmCluster(tmp_path / "cluster")
    try:
        try:
            cluster.start()
        except SlurmError as exc:
            pytest.skip(f"the Slurm daemons did not start: {exc}")
        yield cluster
    finally:
        cluster.stop()


def with_profile(project, cluster):
    """profiles/slurm as shipped, with the account and partition set as its comments say."""
    shutil.copytree(ROOT / "profiles", project / "profiles")
    path = project / "profiles" / "slurm" / "config.yaml"
    profile = yaml.safe_load(path.read_text())
    profile["default-resources"] = {**(profile["default-resources"] or {}),
                                    "slurm_account": cluster.account, "slurm_partition": cluster.partition}
    path.write_text(yaml.safe_dump(profile))
    return project


def result_files(folder):
    """path -> bytes of every result file but the logs."""
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(Path(folder, "results").rglob("*")) if p.is_file() and "logs" not in p.parts}


def jobs_run(output, kind):
    """rule -> jobs Snakemake started, as it prints them: 'rule fit:' (a Slurm job), 'localrule fit:'."""
    return Counter(re.findall(rf"^{kind} (\w+):$", output, flags=re.MULTILINE))


def rule_of(comment):
    """The rule in the comment the executor gives each Slurm job: rule_<rule>[_wildcards_<values>]."""
    return comment.removeprefix("rule_").split("_wildcards_")[0]


def test_shipped_analysis_through_slurm_is_byte_identical_to_a_local_run(cluster, tmp_path):
    local = copy_project(tmp_path / "local")
    local_run = ok(snakemake(local))
    local_jobs = jobs_run(local_run.stdout + local_run.stderr, "localrule")
    project = with_profile(copy_project(tmp_path / "slurm"), cluster)

    process = ok(subprocess.run(
        [sys.executable, "-m", "snakemake", "--profile", "profiles/slurm",
         "--slurm-init-seconds-before-status-checks", "1"],  # the first status check after 1 s, not 40 s
        cwd=project, env=cluster.env, capture_output=True, text=True, timeout=900, check=False))
    output = process.stdout + process.stderr

    run_id = re.search(r"SLURM run ID: (\S+)", output).group(1)
    records = [job for job in cluster.jobs("JobID", "JobName", "State", "ExitCode", "Account", "Partition",
                                           "Comment") if job["JobName"] == run_id]
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+)", output)
    slurm_jobs = jobs_run(output, "rule")
    assert sorted(job["JobID"] for job in records) == sorted(submitted)
    assert Counter(rule_of(job["Comment"]) for job in records) == slurm_jobs
    assert slurm_jobs["fit"] == len(yaml.safe_load((project / "config" / "config.yaml").read_text())["models"])
    assert slurm_jobs + jobs_run(output, "localrule") == local_jobs  # every job once, no retry
    for job in records:
        assert (job["State"], job["ExitCode"]) == ("COMPLETED", "0:0"), job
        assert (job["Account"], job["Partition"]) == (cluster.account, cluster.partition), job

    on_slurm, on_this_machine = result_files(project), result_files(local)
    assert sorted(on_slurm) == sorted(on_this_machine)
    assert [path for path in on_slurm if on_slurm[path] != on_this_machine[path]] == []
