"""A one-node Slurm cluster on this machine, for the tests.

munged, MariaDB, slurmdbd, slurmctld and slurmd from Debian's packages (.ci/install-slurm), each
run in the foreground as a child of the test, with configuration, state, sockets and logs in one
folder and free ports on the loopback address: nothing in /etc or /run is read or changed, and two
clusters can run side by side. Accounting (slurmdbd) is there because Snakemake's Slurm executor
follows its jobs with `sacct` wherever the command exists, and waits for ever when sacct cannot
answer. Processes are tracked through /proc (no cgroups), so it runs in a container without systemd.
"""
import os
import shlex
import shutil
import socket
import subprocess
import time
from pathlib import Path

PROGRAMS = ["munged", "mariadb-install-db", "mariadbd", "mariadb", "slurmdbd", "slurmctld", "slurmd",
            "sbatch", "srun", "squeue", "sacct", "sacctmgr", "scancel", "sinfo"]
START_TIMEOUT = 60  # seconds for a daemon to answer
STOP_TIMEOUT = 20   # seconds for a daemon to exit after SIGTERM, or for cancelled jobs to end


class SlurmError(Exception):
    """A daemon did not start or a Slurm command failed; the message says which and why."""


def missing_programs():
    return [name for name in PROGRAMS if shutil.which(name) is None]


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def node_hardware():
    """slurmd's own view of this machine ('CPUs=2 Boards=1 ... RealMemory=24105'), for the node line."""
    line = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
    return " ".join(field for field in line.split() if not field.startswith("NodeName="))


def wait_for(condition, timeout):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


class SlurmCluster:
    """start() brings the daemons up, stop() ends every one it started (call it in a finally)."""

    name, account, partition, node = "hlmtest", "hlm", "debug", "localhost"

    def __init__(self, folder):
        self.folder = Path(folder)
        self.logs = self.folder / "logs"
        self.conf = self.folder / "slurm.conf"
        self.munge_socket = self.folder / "munge.socket"
        self.ports = {name: free_port() for name in ("mariadb", "slurmdbd", "slurmctld", "slurmd")}
        self.daemons = {}  # name -> Popen, in start order
        path = f"{self.folder / 'bin'}{os.pathsep}{os.environ['PATH']}"  # for srun_with_this_conf()
        self.env = {**os.environ, "SLURM_CONF": str(self.conf), "PATH": path}

    # ---- the client commands -----------------------------------------------------------------------

    def run(self, *command, check=True):
        """A Slurm client command against this cluster; its stdout."""
        process = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=60, check=False)
        if check and process.returncode != 0:
            raise SlurmError(f"{shlex.join(command)}: {(process.stderr or process.stdout).strip()}")
        return process.stdout

    def answers(self, *command):
        return subprocess.run(command, env=self.env, capture_output=True, timeout=60, check=False).returncode == 0

    def jobs(self, *fields):
        """Slurm's accounting record of every job (sacct -X: allocations, not steps), fields as asked."""
        out = self.run("sacct", "-X", "--allusers", "--parsable2", "--noheader", "--starttime", "2000-01-01",
                       f"--format={','.join(fields)}")
        return [dict(zip(fields, line.split("|"))) for line in out.splitlines()]

    # ---- starting and stopping ---------------------------------------------------------------------

    def start(self):
        if os.geteuid() != 0:
            raise SlurmError("the daemons run as root here, and this user is not root")
        for folder in ("bin", "logs", "state", "spool", "mariadb"):
            (self.folder / folder).mkdir(parents=True, exist_ok=True)
        self.start_munge()
        self.start_mariadb()
        self.write_configs()
        self.srun_with_this_conf()
        self.spawn("slurmdbd", "slurmdbd", "-D")
        self.wait_until("slurmdbd", lambda: self.answers("sacctmgr", "-n", "list", "cluster"))
        self.register_account()
        self.spawn("slurmctld", "slurmctld", "-D", "-f", str(self.conf))
        self.spawn("slurmd", "slurmd", "-D", "-f", str(self.conf), "-N", self.node)
        self.wait_until("slurmd", lambda: self.run("sinfo", "-h", "-N", "-o", "%T", check=False).strip() == "idle")

    def stop(self):
        """Cancel the jobs still queued or running, then end each daemon, the last started first."""
        if "slurmctld" in self.daemons and self.daemons["slurmctld"].poll() is None:
            self.run("scancel", "--full", "--user", "root", check=False)
            wait_for(lambda: not self.run("squeue", "-h", check=False).strip(), STOP_TIMEOUT)
        for daemon in reversed(list(self.daemons.values())):
            if daemon.poll() is None:
                daemon.terminate()
                try:
                    daemon.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    daemon.kill()
                    daemon.wait()
        self.daemons = {}

    def spawn(self, name, *command):
        with open(self.logs / f"{name}.out", "wb") as log:
            self.daemons[name] = subprocess.Popen(command, env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                                                  stderr=subprocess.STDOUT)

    def wait_until(self, name, ready):
        """Poll ready() until it holds; SlurmError with the daemon's log if it exits or times out."""
        daemon = self.daemons[name]
        if not wait_for(lambda: daemon.poll() is not None or ready(), START_TIMEOUT) or daemon.poll() is not None:
            raise SlurmError(f"{name} did not start: {self.log_tail(name)}")

    def log_tail(self, name, lines=5):
        logs = [self.logs / f"{name}.out", self.logs / f"{name}.log"]
        text = "\n".join(path.read_text(errors="replace") for path in logs if path.exists())
        return " | ".join(text.strip().splitlines()[-lines:]) or "(no log)"

    def start_munge(self):
        """munged with a fresh key and a socket of its own (Slurm finds it through AuthInfo)."""
        key = self.folder / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        # --force: munged wants a socket every user can reach, and pytest's folders are private
        self.spawn("munged", "munged", "--foreground", "--force", f"--key-file={key}", f"--socket={self.munge_socket}",
                   f"--pid-file={self.folder / 'munged.pid'}", f"--seed-file={self.folder / 'munged.seed'}",
                   f"--log-file={self.logs / 'munged.log'}")
        self.wait_until("munged", self.munge_socket.exists)

    def start_mariadb(self):
        """A MariaDB server for slurmdbd on the loopback address, with a user for it."""
        data, mariadb_socket = self.folder / "mariadb", self.folder / "mariadb.socket"
        install = subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=root",
                                  "--auth-root-authentication-method=socket", "--skip-test-db"],
                                 capture_output=True, text=True, timeout=120, check=False)
        if install.returncode != 0:
            raise SlurmError(f"mariadb-install-db failed: {install.stderr.strip()[-500:]}")
        self.spawn("mariadb", "mariadbd", "--no-defaults", f"--datadir={data}", f"--socket={mariadb_socket}",
                   "--bind-address=127.0.0.1", f"--port={self.ports['mariadb']}", "--user=root",
                   f"--pid-file={self.folder / 'mariadb.pid'}", "--skip-log-bin")
        grant = ("CREATE USER IF NOT EXISTS slurm@'127.0.0.1' IDENTIFIED BY 'slurm';"
                 "GRANT ALL ON slurm_acct_db.* TO slurm@'127.0.0.1';")
        self.wait_until("mariadb", lambda: self.answers("mariadb", "--no-defaults", f"--socket={mariadb_socket}",
                                                        "-u", "root", "-e", grant))

    def register_account(self):
        """The cluster, an account and root as its user, in the accounting database."""
        self.run("sacctmgr", "-i", "add", "cluster", self.name)
        self.run("sacctmgr", "-i", "add", "account", self.account, f"cluster={self.name}", "description=tests",
                 "organization=hlm")
        self.run("sacctmgr", "-i", "add", "user", "root", f"account={self.account}", f"cluster={self.name}")

    def srun_with_this_conf(self):
        """srun that finds this cluster's slurm.conf. The executor's job step removes every SLURM_*
        variable, SLURM_CONF too, before it calls srun, and srun then looks in /etc/slurm only."""
        srun = self.folder / "bin" / "srun"
        srun.write_text(f'#!/bin/sh\nSLURM_CONF={shlex.quote(str(self.conf))} exec {shutil.which("srun")} "$@"\n')
        srun.chmod(0o755)

    def write_configs(self):
        auth = ["AuthType=auth/munge", f"AuthInfo=socket={self.munge_socket}", "SlurmUser=root"]
        slurmdbd = [
            *auth, "DbdHost=localhost", f"DbdPort={self.ports['slurmdbd']}",
            "StorageType=accounting_storage/mysql", "StorageHost=127.0.0.1", f"StoragePort={self.ports['mariadb']}",
            "StorageUser=slurm", "StoragePass=slurm", "StorageLoc=slurm_acct_db",
            f"LogFile={self.logs / 'slurmdbd.log'}", f"PidFile={self.folder / 'slurmdbd.pid'}"]
        slurm = [
            *auth, "CredType=cred/munge", "SlurmdUser=root",
            f"ClusterName={self.name}", f"SlurmctldHost={self.node}",
            f"SlurmctldPort={self.ports['slurmctld']}", f"SlurmdPort={self.ports['slurmd']}",
            f"StateSaveLocation={self.folder / 'state'}", f"SlurmdSpoolDir={self.folder / 'spool'}",
            f"SlurmctldPidFile={self.folder / 'slurmctld.pid'}", f"SlurmdPidFile={self.folder / 'slurmd.pid'}",
            f"SlurmctldLogFile={self.logs / 'slurmctld.log'}", f"SlurmdLogFile={self.logs / 'slurmd.log'}",
            # no cgroups: processes found through /proc, tasks not bound, no per-process accounting
            "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "JobAcctGatherType=jobacct_gather/none",
            "MpiDefault=none", "SwitchType=switch/none", "MailProg=/bin/true", "ReturnToService=2",
            "SchedulerType=sched/backfill", "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core_Memory",
            # accounting in slurmdbd (AccountingStoragePass: its munge socket), with the job comments
            # the executor writes (rule and wildcards)
            "AccountingStorageType=accounting_storage/slurmdbd", "AccountingStorageHost=localhost",
            f"AccountingStoragePort={self.ports['slurmdbd']}", f"AccountingStoragePass={self.munge_socket}",
            "AccountingStoreFlags=job_comment",
            f"NodeName={self.node} NodeAddr=127.0.0.1 {node_hardware()} State=UNKNOWN",
            f"PartitionName={self.partition} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP"]
        dbd_conf = self.folder / "slurmdbd.conf"
        dbd_conf.write_text("\n".join(slurmdbd) + "\n")
        dbd_conf.chmod(0o600)  # slurmdbd refuses a file others can read: it holds the database password
        self.conf.write_text("\n".join(slurm) + "\n")
