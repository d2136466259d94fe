"""launch/sweep slurm on a real SLURM (tests/slurm_cluster.py: a private single-node slurmctld/slurmd
with munge, Debian's slurm-wlm). Skipped, with the reason, where such a cluster cannot be started (not
root, not Debian, packages missing)."""
import csv
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.slurm_cluster import slurm_cluster, wait_for_empty_queue, why_not

# Opt-in (MPISIM_TEST_SLURM=1): in the clean-clone CI run of 2026-12-05 the 2-rank job of the scancel test
# wrote no checkpoint within 5 minutes (cause not yet found; it passed in the developer's runs), so the
# real-cluster tests do not gate CI until that is understood (docs/sweeps.md).
OPT_IN = os.environ.get("MPISIM_TEST_SLURM") == "1"
pytestmark = [pytest.mark.serial,
              pytest.mark.skipif(not OPT_IN, reason="real-SLURM tests run with MPISIM_TEST_SLURM=1"),
              pytest.mark.skipif(OPT_IN and why_not() is not None, reason=f"no SLURM: {why_not()}")]

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


def assert_as_uninterrupted(tmp_path, run_dir):
    ref = tmp_path / f"{run_dir.name}-ref.h5"
    subprocess.run([MPISIM, "run", str(run_dir / "config.toml"), "-o", str(ref), "--quiet"], check=True,
                   env=job_env(dict(os.environ)))
    a, b = datasets(ref), datasets(run_dir / "run.h5")
    assert sorted(a) == sorted(b)
    for key in a:
        assert np.array_equal(a[key], b[key]), (run_dir.name, key)


@pytest.fixture(scope="module")
def cluster():
    with slurm_cluster(cpus=3) as env:
        yield job_env(env)


def test_sweep_of_1_and_2_rank_runs_finishes_and_resumes_after_scancel(tmp_path, cluster):
    """Two 1-rank runs bundled in one array task and a 2-rank run (srun --mpi=pmix, detected); scancel
    once the 2-rank run has a checkpoint; the resubmission (the 2-rank run now under mpirun in the
    allocation) resumes it and finishes every run, equal to uninterrupted runs."""
    path = write_sweep(tmp_path, "scancel", steps=3000, sizes="[300, 400, 600]", checkpoint_every=200,
                       snapshot_every=1000)
    runs = tmp_path / "runs"
    logs = submit(path, cluster, "--runs-per-task", "2")
    array = (runs / "slurm" / "array_r1.sbatch").read_text()
    assert "#SBATCH --array=0-0" in array and "--per-task 2" in array and "#SBATCH --signal=B:TERM@120" in array
    big = runs / "n=600_seed=3"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (big / "run.h5.ckpt").exists():
        time.sleep(0.1)
    assert (big / "run.h5.ckpt").exists(), "the 2-rank run wrote no checkpoint in 5 minutes"
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
    """A 1-minute job warned 45 s before its limit (#SBATCH --signal=B:TERM@45; SLURM sends it 15-20 s
    in): the run checkpoints where it is and stops; the next submission resumes it there."""
    path = write_sweep(tmp_path, "walltime", steps=150000, sizes="[400]")
    run_dir = tmp_path / "runs" / "n=400_seed=3"
    logs = submit(path, cluster, "--time", "00:01:00", "--signal-seconds", "45")
    wait_for_empty_queue(cluster, timeout=180)
    log = (run_dir / "run.log").read_text()
    stopped = re.search(r"mpisim: stopped by SIG(TERM|USR1) at step (\d+)", log)   # USR1: from the job
    assert stopped, log[-2000:] + "".join(p.read_text() for p in logs.glob("*.out"))
    assert f"{run_dir.name}: interrupted" in "".join(p.read_text() for p in logs.glob("*.out"))
    assert manifest(tmp_path)[0][1] == "pending"
    submit(path, cluster, "--time", "00:20:00")
    wait_for_empty_queue(cluster, timeout=900)
    assert manifest(tmp_path) == [("n=400_seed=3", "done", "1", "150000")]
    with h5py.File(run_dir / "run.h5", "r") as f:
        assert list(f["parameters/provenance"].attrs["resumed_at_step"]) == [int(stopped.group(2))]
