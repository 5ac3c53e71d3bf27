# A run killed with SIGKILL (a power cut, the OOM killer, a cluster's pre-emption) leaves Snakemake's
# locks in .snakemake/locks/, and the next run of the same command stops with LockException until
# someone types `snakemake --unlock`. Snakemake has no setting that tells a dead holder from a live
# one, so each run checks here, while the Snakefile is read (before Snakemake takes its locks): when
# no process of a run is left, the locks are stale and go; when one is, it is named in one line.
import socket

LOCKS = Path(".snakemake") / "locks"  # Snakemake's file persistence, under the working directory
# onstart writes cry-diffusion-PID.holder there, holding the machine's name: which machine's run holds the locks


def _run_processes(folder):
    """(pid, command) of each process on this machine that belongs to a run in `folder`: Snakemake
    itself, a job it started (.snakemake/scripts/...) or a training process left running without it."""
    import psutil  # a dependency of Snakemake's

    mine = {os.getpid()} | {p.pid for p in psutil.Process().parents()}
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        argv = proc.info["cmdline"] or []
        if proc.info["pid"] in mine or not any("snakemake" in a or "cry_diffusion" in a for a in argv):
            continue
        try:
            cwd = os.path.realpath(proc.cwd())
        except psutil.NoSuchProcess:
            continue
        except psutil.Error:
            cwd = None  # another user's: it may be in this folder, so it counts
        if cwd is None or cwd == folder or cwd.startswith(folder + os.sep):
            found.append((proc.info["pid"], " ".join(argv)[:80]))
    return found


def clear_stale_locks():
    """Remove Snakemake's locks when no run that could hold them is alive; else say in one line what holds them."""
    if not workflow.is_main_process or not list(LOCKS.glob("*.lock")):
        return
    elsewhere = sorted({p.read_text().strip() for p in LOCKS.glob("*.holder")} - {socket.gethostname()})
    if elsewhere:  # processes on another machine sharing this folder can't be seen from here
        print(f"results are locked by a run on {', '.join(elsewhere)}: if it has stopped, run `snakemake --unlock`, "
              "then your command again", file=sys.stderr)  # fmt: skip
        return
    alive = _run_processes(os.path.realpath("."))
    if alive:
        pid, command = alive[0]
        print(f"a run in this folder still holds its locks: process {pid} ({command}); wait for it, or stop it "
              f"(kill {pid}) and run your command again", file=sys.stderr)  # fmt: skip
        return
    for path in LOCKS.iterdir():
        path.unlink(missing_ok=True)
    print("removed the locks a killed run left in .snakemake/locks (no process of it is left)", file=sys.stderr)


clear_stale_locks()


onstart:
    if LOCKS.is_dir():  # Snakemake removes the folder, and this with it, when the run ends
        (LOCKS / f"cry-diffusion-{os.getpid()}.holder").write_text(socket.gethostname())
