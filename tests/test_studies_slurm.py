"""launch/sweep slurm on a real SLURM (tests/slurm_cluster.py: a private single-node slurmctld/slurmd
with munge, Debian's slurm-wlm). Skipped, with the reason, where such a cluster cannot be started (not
root, not Debian, packages missing)."""
import csv
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.slurm_cluster import slurm_cluster, wait_for_empty_queue, why_not

# Run where a private cluster can be started (root on Debian with slurm-wlm and munge, which launch/setup
# installs there); MPISIM_TEST_SLURM=0 skips them. They were opt-in for a while: a CI run saw the 2-rank
# job's `srun --mpi=pmix` step fail to launch because another cluster on the host had used the same job id
# (tests/slurm_cluster.py keeps PMIx's directory and job ids private now; docs/sweeps.md).
SKIP = os.environ.get("MPISIM_TEST_SLURM") == "0"
pytestmark = [pytest.mark.serial,
              pytest.mark.skipif(SKIP, reason="real-SLURM tests skipped by MPISIM_TEST_SLURM=0"),
              pytest.mark.skipif(not SKIP and why_not() is not None, reason=f"no SLURM: {why_not()}")]

TOP = Path(__file__).resolve().parents[1]
LAUNCH = TOP / "launch" / "sweep"
MPISIM = str(Path(sys.executable).parent / "mpisim")

SWEEP = """
[sweep]
name = "{name}"
out_dir = "runs"
[base.system]
dim = 3
phi = 0.55
seed = 3
[base.dynamics]
scheme = "bro-pairwise"
kick_size = 0.2
[base.run]
steps = {steps}
log_every = 50
stop_when_absorbed = false
checkpoint_every = {checkpoint_every}
[base.output]
flush_every = 500
snapshot_every = {snapshot_every}
[axes]
n = {sizes}
[ranks]
rule = [[0, 1], [500, 2]]
"""


def job_env(env):
    """Without the variables of an MPI job this process may belong to (pytest under mpirun); ranks that
    wait in MPI yield the core (the test cluster has more CPUs than the machine)."""
    env = {k: v for k, v in env.items() if not k.startswith(("OMPI_", "PMIX_", "PMI_", "OPAL_"))}
    return {**env, "OMPI_MCA_mpi_yield_when_idle": "1"}


def write_sweep(tmp_path, name, steps, sizes, checkpoint_every=0, snapshot_every=0):
    path = tmp_path / f"{name}.toml"
    path.write_text(SWEEP.format(name=name, steps=steps, sizes=sizes, checkpoint_every=checkpoint_every,
                                 snapshot_every=snapshot_every))
    return path


def submit(path, env, *options):
    """launch/sweep slurm + submit.sh; returns the job logs' directory."""
    out = subprocess.run([str(LAUNCH), "slurm", str(path), *options], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    sub = subprocess.run([str(path.parent / "runs" / "slurm" / "submit.sh")], env=env, capture_output=True,
                         text=True)
    assert sub.returncode == 0, sub.stderr
    return path.parent / "runs" / "slurm" / "logs"


def manifest(tmp_path):
    with open(tmp_path / "runs" / "manifest.tsv", newline="") as fh:
        return [(r["name"], r["status"], r["ranks"], r["steps"]) for r in csv.DictReader(fh, delimiter="\t")]


def attempts(run_dir):
    return [ln for ln in (run_dir / "run.log").read_text().splitlines() if ln.startswith("# ")]


def datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
    return out


def job_report(runs, cluster):
    """What the queue, the jobs' and runs' logs and slurmd's errors say (for a failure message)."""
    out = subprocess.run(["squeue", "-h", "-o", "%i %T %r"], env=cluster, capture_output=True, text=True)
    logs = "".join(f"\n== {p.relative_to(runs)}\n{p.read_text()[-1500:]}"
                   for p in sorted(runs.glob("slurm/logs/*.out")) + sorted(runs.glob("*/run.log")))
    slurmd = Path(cluster["SLURM_CONF"]).parent / "slurmd.log"
    errors = [ln for ln in slurmd.read_text().splitlines() if "error" in ln] if slurmd.exists() else []
    return f"squeue: {out.stdout.strip() or '(empty)'}{logs}\n== slurmd errors\n" + "\n".join(errors[-15:])


def wait_for_checkpoint(run_dir, runs, cluster, timeout):
    """Wait until ``run_dir`` has a checkpoint; fail at once, with the jobs' logs, if its run failed or no
    job is left that could write one."""
    deadline = time.monotonic() + timeout
    while not (run_dir / "run.h5.ckpt").exists():
        queue = subprocess.run(["squeue", "-h", "-o", "%i"], env=cluster, capture_output=True, text=True)
        gone = queue.returncode == 0 and not queue.stdout.strip()
        if (run_dir / "FAILED").exists() or gone or time.monotonic() > deadline:
            why = "its run failed" if (run_dir / "FAILED").exists() else "no job left" if gone else f"{timeout} s"
            pytest.fail(f"{run_dir.name} wrote no checkpoint ({why}): {job_report(runs, cluster)}")
        time.sleep(0.2)


@contextmanager
def decoy_pmix_dirs(first_job_id, count=10):
    """Directories named as the PMIx plugin's default per-step directory of this cluster's first job ids
    (what another cluster on the host, or a killed one, leaves in /tmp): the private cluster must not
    use them."""
    made = []
    try:
        for job in range(first_job_id, first_job_id + count):
            d = Path(tempfile.gettempdir()) / f"spmix_appdir_{os.geteuid()}_{job}.0"
            if not d.exists():
                d.mkdir()
                made.append(d)
        yield
    finally:
        for d in made:
            shutil.rmtree(d, ignore_errors=True)


def assert_as_uninterrupted(tmp_path, run_dir):
    ref = tmp_path / f"{run_dir.name}-ref.h5"
    subprocess.run([MPISIM, "run", str(run_dir / "config.toml"), "-o", str(ref), "--quiet"], check=True,
                   env=job_env(dict(os.environ)))
    a, b = datasets(ref), datasets(run_dir / "run.h5")
    assert sorted(a) == sorted(b)
    for key in a:
        assert np.array_equal(a[key], b[key]), (run_dir.name, key)


FIRST_JOB_ID = random.randrange(10_000, 1_000_000)


@pytest.fixture(scope="module")
def cluster():
    with slurm_cluster(cpus=3, first_job_id=FIRST_JOB_ID) as env:
        yield job_env(env)


def test_sweep_of_1_and_2_rank_runs_finishes_and_resumes_after_scancel(tmp_path, cluster):
    """Two 1-rank runs bundled in one array task and a 2-rank run (srun --mpi=pmix, detected); scancel
    once the 2-rank run has a checkpoint; the resubmission (the 2-rank run now under mpirun in the
    allocation) resumes it and finishes every run, equal to uninterrupted runs. The PMIx directories that
    another cluster with the same job ids leaves in /tmp are there and must not matter."""
    path = write_sweep(tmp_path, "scancel", steps=3000, sizes="[300, 400, 600]", checkpoint_every=200,
                       snapshot_every=1000)
    runs = tmp_path / "runs"
    with decoy_pmix_dirs(FIRST_JOB_ID):
        logs = submit(path, cluster, "--runs-per-task", "2")
        array = (runs / "slurm" / "array_r1.sbatch").read_text()
        assert "#SBATCH --array=0-0" in array and "--per-task 2" in array and "#SBATCH --signal=B:TERM@120" in array
        big = runs / "n=600_seed=3"
        wait_for_checkpoint(big, runs, cluster, timeout=300)
    subprocess.run(["scancel", "-u", "root"], env=cluster, check=True)
    wait_for_empty_queue(cluster, timeout=120)
    job_logs = "".join(p.read_text() for p in logs.glob("*.out"))
    assert "launcher: srun --mpi=pmix -n 2" in job_logs, job_logs
    assert "1 run(s) of 1 rank(s)" not in job_logs and "2 run(s) of 1 rank(s)" in job_logs   # bundled
    assert not (big / "FAILED").exists() and not (runs / "n=300_seed=3" / "FAILED").exists()
    assert len(attempts(big)) == 1

    submit(path, cluster, "--launcher", "mpirun")
    wait_for_empty_queue(cluster, timeout=600)
    job_logs = "".join(p.read_text() for p in logs.glob("*.out"))
    assert "launcher: mpirun -n 2" in job_logs
    assert manifest(tmp_path) == [("n=300_seed=3", "done", "1", "3000"), ("n=400_seed=3", "done", "1", "3000"),
                                  ("n=600_seed=3", "done", "2", "3000")]
    tries = attempts(big)
    assert len(tries) == 2 and tries[1].endswith("--resume") and tries[1].split(": ", 1)[1].startswith("mpirun")
    assert_as_uninterrupted(tmp_path, big)


def test_time_limit_warning_checkpoints_and_the_next_job_resumes(tmp_path, cluster):
    """A 90-second job warned 60 s before its limit (#SBATCH --signal=B:TERM@60; SLURM sends it 30-40 s
    in, so the run has started even on a loaded machine; a warning during mpisim's own start-up is kept
    too, mpisim/cli.py): the run checkpoints where it is and stops; the next submission resumes it there."""
    # 2.4e6 steps: >= 2 minutes even at the compiled step loop's ~50 us per step (core/steploop.py; 6e5
    # steps, and before them 1.5e5, finished before the warning once the step got faster), so the warning
    # at 30-40 s always finds the run going; the resumed rest fits the second job's wait at 0.2 ms per step
    path = write_sweep(tmp_path, "walltime", steps=2400000, sizes="[400]")
    run_dir = tmp_path / "runs" / "n=400_seed=3"
    logs = submit(path, cluster, "--time", "00:01:30", "--signal-seconds", "60")
    wait_for_empty_queue(cluster, timeout=180)
    log = (run_dir / "run.log").read_text()
    stopped = re.search(r"mpisim: stopped by SIG(TERM|USR1) at step (\d+)", log)   # USR1: from the job
    assert stopped, log[-2000:] + "".join(p.read_text() for p in logs.glob("*.out"))
    assert f"{run_dir.name}: interrupted" in "".join(p.read_text() for p in logs.glob("*.out"))
    assert manifest(tmp_path)[0][1] == "pending"
    submit(path, cluster, "--time", "00:20:00")
    wait_for_empty_queue(cluster, timeout=900)
    assert manifest(tmp_path) == [("n=400_seed=3", "done", "1", "2400000")]
    with h5py.File(run_dir / "run.h5", "r") as f:
        assert list(f["parameters/provenance"].attrs["resumed_at_step"]) == [int(stopped.group(2))]
