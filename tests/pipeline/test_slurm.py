"""The shipped analysis, with a small power analysis added, on a real Slurm cluster: `snakemake
--profile profiles/slurm` on a one-node cluster started on this machine (tests/slurm_cluster.py),
checked against Slurm's accounting records and, byte for byte, against a local run.

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


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    missing = missing_programs()
    if missing:
        pytest.skip(f"Slurm is not installed ({', '.join(missing)} missing; bash .ci/install-slurm)")
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="pip install -e '.[slurm]'")
    cluster = SlurmCluster(tmp_path_factory.mktemp("cluster"))
    try:
        try:
            cluster.start()
        except SlurmError as exc:
            pytest.skip(f"the Slurm daemons did not start: {exc}")
        yield cluster
    finally:
        cluster.stop()


# 2 sizes x 8 replicates in chunks of 4: four power_chunk jobs, then the gather and the figure
POWER = {"slurm_power": {"model": "full", "term": "ses:disclim", "effect": 0.25, "along": "id", "sizes": [10, 20],
                         "nsim": 8, "seed": 5, "chunk": 4}}
POWER_CHUNK_JOBS = 4


def with_power(project):
    """The shipped config with the power analysis POWER added."""
    path = project / "config" / "config.yaml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["power"] = {**(config.get("power") or {}), **POWER}
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return project


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory):
    """The analysis through profiles/slurm: the project folder and what Snakemake printed."""
    project = with_profile(with_power(copy_project(tmp_path_factory.mktemp("slurm"))), cluster)
    process = ok(subprocess.run(
        [sys.executable, "-m", "snakemake", "--profile", "profiles/slurm",
         "--slurm-init-seconds-before-status-checks", "1"],  # the first status check after 1 s, not 40 s
        cwd=project, env=cluster.env, capture_output=True, text=True, timeout=600, check=False))
    return project, process.stdout + process.stderr


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    project = with_power(copy_project(tmp_path_factory.mktemp("local")))
    process = ok(snakemake(project))
    return project, process.stdout + process.stderr


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


def jobs_run(output, where):
    """rule -> jobs Snakemake started, as it prints them: 'rule fit:' or 'checkpoint data:' (a
    Slurm job, where=""), 'localrule fit:' or 'localcheckpoint data:' (where="local")."""
    return Counter(re.findall(rf"^{where}(?:rule|checkpoint) (\w+):$", output, flags=re.MULTILINE))


def rule_of(comment):
    """The rule in the comment the executor gives each Slurm job: rule_<rule>[_wildcards_<values>]."""
    return comment.removeprefix("rule_").split("_wildcards_")[0]


def test_every_job_but_the_local_rules_is_a_completed_slurm_job(cluster, slurm_run, local_run):
    (project, output), (_, local_output) = slurm_run, local_run
    run_id = re.search(r"SLURM run ID: (\S+)", output).group(1)
    records = [job for job in cluster.jobs("JobID", "JobName", "State", "ExitCode", "Account", "Partition",
                                           "NodeList", "Comment") if job["JobName"] == run_id]
    slurm_jobs = jobs_run(output, "")
    assert sorted(job["JobID"] for job in records) == sorted(re.findall(r"submitted with SLURM jobid (\d+)", output))
    assert Counter(rule_of(job["Comment"]) for job in records) == slurm_jobs
    assert slurm_jobs["fit"] == len(yaml.safe_load((project / "config" / "config.yaml").read_text())["models"])
    in_accounting = Counter(rule_of(job["Comment"]) for job in records)
    assert (in_accounting["power_chunk"], in_accounting["power"]) == (POWER_CHUNK_JOBS, 1)  # Slurm ran them
    assert slurm_jobs + jobs_run(output, "local") == jobs_run(local_output, "local")  # each once
    for job in records:
        assert (job["State"], job["ExitCode"]) == ("COMPLETED", "0:0"), job
        assert (job["Account"], job["Partition"], job["NodeList"]) == (cluster.account, cluster.partition,
                                                                       cluster.node), job


def test_results_and_report_are_byte_identical_to_a_local_run(slurm_run, local_run):
    on_slurm, on_this_machine = result_files(slurm_run[0]), result_files(local_run[0])
    assert sorted(on_slurm) == sorted(on_this_machine)
    assert "results/power/slurm_power.json" in on_slurm
    assert len([path for path in on_slurm if path.startswith("results/power/slurm_power/")]) == POWER_CHUNK_JOBS
    assert [path for path in on_slurm if on_slurm[path] != on_this_machine[path]] == []
