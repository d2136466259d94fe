"""A private single-node SLURM cluster for tests: munged (as user munge), slurmctld and slurmd, each in
the foreground with its files in one temporary directory and its own ports, so it neither needs nor
touches a system SLURM. Debian's packages: ``apt-get install slurm-wlm munge`` (launch/setup does it as
root on Debian). ``why_not()`` says why one cannot be started here.

Two things of a stock single-node SLURM are shared with every other cluster on the host, and a private
test cluster must not share them (tests/test_studies_slurm.py, docs/sweeps.md "How it was verified"):
- the PMIx plugin's per-step directory, ``/tmp/spmix_appdir_<uid>_<job>.<step>`` by default: a second
  cluster's (or a killed earlier cluster's) directory of the same name makes ``srun --mpi=pmix`` fail
  with "task 0 launch failed: Unspecified error" (slurmd: "Cannot create client cli tmpdir ... File
  exists"). Here ``mpi.conf`` puts it in the cluster's own directory (``PMIxCliTmpDirBase``);
- job ids, which start at 1 in every fresh cluster and name Open MPI's PMIx namespace: the first id is
  chosen at random (``FirstJobId``).
"""
import os
import platform
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

DAEMONS = {"munged": "/usr/sbin/munged", "slurmctld": "/usr/sbin/slurmctld", "slurmd": "/usr/sbin/slurmd"}
CLIENTS = ("sbatch", "squeue", "scancel", "sinfo", "srun")


def why_not():
    """None if a private cluster can be started here, else the reason."""
    if os.geteuid() != 0:
        return "needs root (slurmd and munged run as root and munge)"
    if not Path("/etc/debian_version").is_file():
        return f"needs Debian's slurm-wlm and munge packages (this is {platform.platform()})"
    missing = [name for name, path in DAEMONS.items() if not os.access(path, os.X_OK)]
    missing += [c for c in CLIENTS if shutil.which(c) is None]
    if missing:
        return f"slurm-wlm or munge not installed ({', '.join(missing)} missing): apt-get install slurm-wlm munge"
    try:
        pwd.getpwnam("munge")
    except KeyError:
        return "no user 'munge' (the munge package creates it)"
    return None


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


CONF = """\
ClusterName={name}
FirstJobId={first_job_id}
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={dir}/munge/munge.socket
SlurmUser=root
SlurmdUser=root
SlurmdParameters=config_overrides
StateSaveLocation={dir}/state
SlurmdSpoolDir={dir}/spool
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd.pid
SlurmctldLogFile={dir}/slurmctld.log
SlurmdLogFile={dir}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
KillWait=30
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


@contextmanager
def slurm_cluster(cpus=2, memory_mb=20000, first_job_id=None):
    """Start munged, slurmctld and slurmd; yield the environment for the SLURM clients (SLURM_CONF);
    stop all three (and cancel every job) on leaving. ``cpus`` may exceed the machine's (config_overrides);
    job ids start at ``first_job_id`` (default: random in [10^4, 10^6))."""
    d = Path(tempfile.mkdtemp(prefix="mpisim-slurm-"))
    d.chmod(0o755)                      # munged must reach its socket directory
    procs = []
    try:
        munge = d / "munge"
        munge.mkdir(mode=0o711)
        (munge / "munge.key").write_bytes(os.urandom(1024))
        (munge / "munge.key").chmod(0o400)
        user = pwd.getpwnam("munge")
        for p in (munge, munge / "munge.key"):
            os.chown(p, user.pw_uid, user.pw_gid)
        for sub in ("state", "spool", "pmix"):
            (d / sub).mkdir()
        ctld_port, d_port = _free_ports(2)
        host = socket.gethostname()
        conf = d / "slurm.conf"
        if first_job_id is None:
            first_job_id = 10_000 + int.from_bytes(os.urandom(4), "little") % 990_000
        conf.write_text(CONF.format(name=f"t{ctld_port}", host=host, ctld_port=ctld_port, d_port=d_port, dir=d,
                                    cpus=cpus, memory_mb=memory_mb, first_job_id=first_job_id))
        # read by slurmd's mpi/pmix plugin from slurm.conf's directory (SLURM 21.08 and later)
        (d / "mpi.conf").write_text(f"PMIxCliTmpDirBase={d}/pmix\n")
        env = {**os.environ, "SLURM_CONF": str(conf)}
        log = open(d / "daemons.log", "w")
        procs.append(subprocess.Popen(
            ["runuser", "-u", "munge", "--", DAEMONS["munged"], "-F", f"--socket={munge}/munge.socket",
             f"--key-file={munge}/munge.key", f"--pid-file={munge}/munged.pid", f"--log-file={munge}/munged.log",
             f"--seed-file={munge}/munged.seed"], stdout=log, stderr=log))
        _wait(lambda: (munge / "munge.socket").exists(), procs, "munged did not create its socket", d)
        procs.append(subprocess.Popen([DAEMONS["slurmctld"], "-D", "-i"], env=env, stdout=log, stderr=log))
        procs.append(subprocess.Popen([DAEMONS["slurmd"], "-D"], env=env, stdout=log, stderr=log))

        def idle():
            out = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True)
            return out.stdout.strip() == "idle"
        _wait(idle, procs, "the node did not become idle", d)
        yield env
    finally:
        if len(procs) == 3:
            subprocess.run(["scancel", "--full", "-u", "root"], env=env, capture_output=True)
            time.sleep(1)
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(d, ignore_errors=True)


def _wait(ready, procs, what, d, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if any(p.poll() is not None for p in procs):
            break
        time.sleep(0.2)
    logs = "".join(f"\n== {p.name}\n" + p.read_text()[-2000:] for p in sorted(d.rglob("*.log")))
    raise RuntimeError(f"{what}{logs}")


def wait_for_empty_queue(env, timeout):
    """Wait until no job is pending or running (the cluster is private); returns the seconds waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        out = subprocess.run(["squeue", "-h", "-o", "%i"], env=env, capture_output=True, text=True)
        if out.returncode == 0 and not out.stdout.strip():
            return time.monotonic() - t0
        time.sleep(1)
    raise TimeoutError(f"jobs still queued after {timeout} s")
