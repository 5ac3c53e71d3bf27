"""A throwaway one-node SLURM cluster on this machine, from Debian's packages, for tests/test_slurm.py.

munged, MariaDB, slurmdbd, slurmctld and slurmd run in the foreground as children of this process,
with every config, key, socket, state, spool and log file in one temporary folder, and stop when
the cluster does; nothing under /etc is read or written. Clients (sbatch, squeue, sacct, ...) find
the cluster through SLURM_CONF, which `LocalSlurm.env()` sets.

The node offers the partitions profiles/slurm asks for, `cpu` (the default) and `gpu`, and four
`gpu` GRES, so that profile runs unchanged. Slurm 22.05 drops a GPU that has no File= in gres.conf
("Removing file-less GPU gpu:(null) from final GRES list") and then marks the node invalid, so the
GPUs are character devices made here (the same device as /dev/null): jobs get one as
CUDA_VISIBLE_DEVICES, and torch, finding no CUDA, runs on the CPU. The node also claims 32 CPUs
and 128 GiB (SlurmdParameters=config_overrides) so that the profile's requests fit whatever the
machine has. slurmdbd is there because the SLURM executor plugin asks `sacct` for job states
whenever the command exists, and without accounting storage `sacct` only answers
"Slurm accounting storage is disabled".

Needs root (slurmd starts jobs). By hand, for a look around:

    sudo python tests/slurm/cluster.py          # prints the SLURM_CONF to export; Ctrl-C stops it
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path

DAEMONS = ["munged", "mariadb-install-db", "mariadbd", "slurmdbd", "slurmctld", "slurmd"]
CLIENTS = ["munge", "mariadb", "sbatch", "srun", "squeue", "sacct", "sacctmgr", "sinfo", "scontrol", "scancel"]
PACKAGES = "slurmctld slurmd slurmdbd slurm-client munge mariadb-server"
CLUSTER = "local"
# As a GPU node of a real cluster: room for a run's three trainings (each 8 CPUs, 32 GB and a GPU under
# profiles/slurm) at once, as the profile's own limit of 4 GPUs allows, rather than one after another
CPUS, MEMORY_MB, GPUS = 32, 131072, 4


def which(name: str) -> str | None:
    # the daemons live in /usr/sbin, which a user's PATH may lack
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def missing() -> str | None:
    """Why a local cluster cannot start here, or None if it can."""
    absent = [name for name in DAEMONS + CLIENTS if not which(name)]
    if absent:
        return f"no {', '.join(absent)} (Debian: apt-get install {PACKAGES}; .ci/run installs them)"
    if os.geteuid() != 0:
        return "slurmd must run as root to start jobs"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalSlurm:
    def __init__(self, root: Path | None = None):
        # short paths: a Unix socket's path must stay under 108 bytes
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix="slurm-"))
        self.node = socket.gethostname().split(".")[0] or "localhost"
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.conf = self.root / "etc" / "slurm.conf"

    # ------------------------------------------------------------------ public
    def env(self, base: dict | None = None) -> dict:
        """An environment whose SLURM clients talk to this cluster (and not to one the caller may sit in)."""
        env = {k: v for k, v in (base or os.environ).items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_", "SQUEUE_", "SACCT_"))}
        env["SLURM_CONF"] = str(self.conf)
        env["PATH"] = f"{self.root / 'bin'}:" + env.get("PATH", "/usr/bin:/bin") + ":/usr/sbin:/sbin"
        return env

    def run(self, *cmd: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        proc = subprocess.run(cmd, env=self.env(), capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode:
            raise RuntimeError(f"{' '.join(cmd)}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}\n{self.logs()}")
        return proc

    def start(self) -> "LocalSlurm":
        try:
            self._write_files()
            self._start_munge()
            self._start_mariadb()
            self._start_slurm()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Cancel every job, stop the daemons in reverse order, and remove the folder."""
        if any(name == "slurmctld" for name, _ in self.procs):
            try:
                self.run("scancel", "--full", "--quiet", "--user", "root", check=False, timeout=10)
                self._wait(lambda: not self.run("squeue", "--noheader", check=False, timeout=10).stdout.strip(), 15, "jobs to end")
            except Exception:
                pass
        for name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.procs.clear()
        shutil.rmtree(self.root, ignore_errors=True)

    def logs(self, tail: int = 15) -> str:
        out = []
        for log in sorted((self.root / "log").glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()[-tail:]
            out.append(f"--- {log.name}\n" + "\n".join(lines))
        return "\n".join(out)

    def __enter__(self) -> "LocalSlurm":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ----------------------------------------------------------------- helpers
    def _spawn(self, name: str, *cmd: str, env: dict | None = None) -> subprocess.Popen:
        out = open(self.root / "log" / f"{name}.out", "w")
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env or self.env(),
                                stdin=subprocess.DEVNULL, start_new_session=True)
        out.close()
        self.procs.append((name, proc))
        return proc

    def _wait(self, ready, seconds: float, what: str) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for name, proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited ({proc.returncode}) while waiting for {what}\n{self._outs()}{self.logs()}")
            try:
                if ready():
                    return
            except (OSError, subprocess.SubprocessError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"timed out after {seconds} s waiting for {what}\n{self._outs()}{self.logs()}")

    def _outs(self) -> str:
        return "".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}\n" for p in sorted((self.root / "log").glob("*.out")))

    def _write_files(self) -> None:
        r = self.root
        for d in ("bin", "etc", "munge", "log", "state", "spool", "db"):
            (r / d).mkdir(parents=True, exist_ok=True)
        key = r / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        self.munge_socket = r / "munge" / "munge.socket"
        self.mysql_socket = r / "db.sock"
        ctld_port, slurmd_port, dbd_port = free_port(), free_port(), free_port()
        for k in range(GPUS):
            gpu = r / "etc" / f"fake-gpu{k}"
            try:  # a character device (the one /dev/null is): what gres.conf expects a GPU to be
                os.mknod(gpu, stat.S_IFCHR | 0o666, os.makedev(1, 3))
            except OSError:  # a plain file works too; slurmd only logs "is not a valid character or block device"
                gpu.touch()
        (r / "etc" / "slurm.conf").write_text(f"""\
ClusterName={CLUSTER}
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={self.munge_socket}
CredType=cred/munge
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort={dbd_port}
AccountingStoragePass={self.munge_socket}
AccountingStorageTRES=gres/gpu
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
ReturnToService=2
KillWait=5
GresTypes=gpu
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={CPUS} RealMemory={MEMORY_MB} Gres=gpu:{GPUS} State=UNKNOWN
PartitionName=cpu Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes={self.node} MaxTime=INFINITE State=UP
""")
        (r / "etc" / "gres.conf").write_text(f"NodeName={self.node} Name=gpu File={r / 'etc'}/fake-gpu[0-{GPUS - 1}]\n")
        # snakemake-executor-plugin-slurm-jobstep (0.6.1) removes every SLURM_* variable but the job's ids
        # from the environment of the srun it starts inside the job, SLURM_CONF among them; that srun then
        # looks in /etc/slurm, in slurmd's configless cache and in DNS, and gives up ("Could not establish
        # a configuration source"). A site's nodes have their config in one of those places; ours is here.
        srun = r / "bin" / "srun"
        srun.write_text(f"#!/bin/sh\nSLURM_CONF={self.conf} exec {which('srun')} \"$@\"\n")
        srun.chmod(0o755)
        dbd = r / "etc" / "slurmdbd.conf"
        dbd.write_text(f"""\
AuthType=auth/munge
AuthInfo=socket={self.munge_socket}
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort={dbd_port}
SlurmUser=root
LogFile={r}/log/slurmdbd.log
PidFile={r}/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=root
StorageLoc=slurm_acct_db
""")
        dbd.chmod(0o600)  # slurmdbd refuses a readable one

    def _start_munge(self) -> None:
        r = self.root
        # --force: the folder is root's alone (0700), where munged would like others to reach its socket
        self._spawn("munged", which("munged"), "--foreground", "--force", f"--key-file={r}/munge/munge.key",
                    f"--socket={self.munge_socket}", f"--pid-file={r}/munge/munged.pid",
                    f"--log-file={r}/log/munged.log", f"--seed-file={r}/munge/munged.seed")
        self._wait(lambda: subprocess.run(["munge", "-n", "-S", str(self.munge_socket)], capture_output=True).returncode == 0,
                   20, "munged")

    def _start_mariadb(self) -> None:
        r = self.root
        subprocess.run([which("mariadb-install-db"), "--no-defaults", "--user=root", f"--datadir={r}/db",
                        "--auth-root-authentication-method=normal", "--skip-test-db"],
                       check=True, capture_output=True, text=True, timeout=120)
        self._spawn("mariadbd", which("mariadbd"), "--no-defaults", "--user=root", f"--datadir={r}/db",
                    f"--socket={self.mysql_socket}", "--skip-networking", f"--pid-file={r}/mariadbd.pid",
                    f"--log-error={r}/log/mariadbd.log", "--innodb-buffer-pool-size=32M")
        self._wait(lambda: subprocess.run(["mariadb", "--no-defaults", "-S", str(self.mysql_socket), "-u", "root",
                                           "-e", "select 1"], capture_output=True).returncode == 0, 60, "mariadbd")

    def _start_slurm(self) -> None:
        # slurmdbd reads slurmdbd.conf beside $SLURM_CONF, and reaches MariaDB through $MYSQL_UNIX_PORT
        self._spawn("slurmdbd", which("slurmdbd"), "-D", env={**self.env(), "MYSQL_UNIX_PORT": str(self.mysql_socket)})
        self._wait(lambda: self.run("sacctmgr", "-n", "list", "cluster", check=False, timeout=10).returncode == 0,
                   60, "slurmdbd")
        self._spawn("slurmctld", which("slurmctld"), "-D", "-f", str(self.conf))
        self._wait(lambda: self.run("scontrol", "ping", check=False, timeout=10).stdout.count("UP") >= 1, 60, "slurmctld")
        self._spawn("slurmd", which("slurmd"), "-D", "-f", str(self.conf), "-N", self.node)
        self._wait(lambda: self.run("sinfo", "-h", "-N", "-o", "%T", check=False, timeout=10).stdout.split()[:1] == ["idle"],
                   60, "the node to come up idle")
        # slurmctld adds the cluster (and root's association) to the database when it registers
        self._wait(lambda: CLUSTER in self.run("sacctmgr", "-n", "-P", "list", "cluster", "format=cluster",
                                               check=False, timeout=10).stdout.split(), 60, "the cluster in slurmdbd")


if __name__ == "__main__":
    why = missing()
    if why:
        raise SystemExit(f"cannot start: {why}")
    with LocalSlurm() as cluster:
        print(cluster.run("sinfo").stdout)
        print(f"export SLURM_CONF={cluster.conf}    # Ctrl-C here stops the cluster")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
