"""launch/sweep (the studies package): planning, bad input, local execution with a failing run and a resume
after an interrupted sweep, the sbatch scripts (multi-node runs, bundles, the launcher chosen in the job),
the failure cause and the manifest. Runs are tiny (N ~ 300); the real-SLURM tests are test_studies_slurm.py."""
import csv
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import studies.cli
import studies.local
import studies.plan
import studies.slurm
import studies.status
from mpisim.config import RunConfig

pytestmark = pytest.mark.serial

TOP = Path(__file__).resolve().parents[1]
LAUNCH = TOP / "launch" / "sweep"

BASE = """
[base.system]
dim = 3
n = 300
phi = 0.5
[base.dynamics]
scheme = "sgd"
learning_rate = 0.1
batch_fraction = 0.5
[base.run]
steps = {steps}
log_every = 10
stop_when_absorbed = false
"""


def write_sweep(tmp_path, body, steps=50, head="", run=""):
    """A sweep file in tmp_path: [sweep] (name t, out_dir runs, plus ``head``), BASE (plus ``run`` in
    [base.run]), then ``body``."""
    path = tmp_path / "s.toml"
    path.write_text(f'[sweep]\nname = "t"\nout_dir = "runs"\n{head}' + BASE.format(steps=steps) + run + body)
    return path


def read_manifest(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def cli(*args, **kw):
    return subprocess.run([str(LAUNCH), *map(str, args)], capture_output=True, text=True, cwd=kw.pop("cwd", "/"),
                          timeout=kw.pop("timeout", 240), **kw)


# ------------------------------------------------------------------------------------------- planning
def test_plan_writes_run_directories_configs_and_manifest(tmp_path):
    path = write_sweep(tmp_path, """
[axes]
phi = [0.45, 0.55]
system.n = {start = 200, stop = 400, num = 3}
dynamics.learning_rate = {start = 0.01, stop = 1.0, num = 3, log = true}
""", head="seeds = [3, 4]\n")
    assert studies.cli.main(["plan", str(path)]) == 0
    out = tmp_path / "runs"
    rows = read_manifest(out / "manifest.tsv")
    assert len(rows) == 2 * 3 * 3 * 2
    assert {"path", "status", "scheme", "n", "phi", "learning_rate", "batch_fraction", "seed", "ranks"} \
        <= set(rows[0])
    assert {r["n"] for r in rows} == {"200", "300", "400"}
    assert {r["learning_rate"] for r in rows} == {"0.01", "0.1", "1"}
    assert {r["status"] for r in rows} == {"pending"}
    assert len({r["path"] for r in rows}) == len(rows)
    for row in rows:
        config = RunConfig.from_toml(out / row["path"].replace("run.h5", "config.toml"))
        assert config.system.n == int(row["n"]) and config.system.phi == float(row["phi"])
        assert config.system.seed == int(row["seed"]) and config.dynamics.learning_rate == float(row["learning_rate"])
        assert not (out / row["path"]).exists()
    assert (out / "phi=0.45_n=200_lr=0.01_seed=3" / "config.toml").is_file()
    # planning again changes nothing
    before = {p: p.stat().st_mtime_ns for p in out.glob("*/config.toml")}
    assert studies.cli.main(["plan", str(path)]) == 0
    assert before == {p: p.stat().st_mtime_ns for p in out.glob("*/config.toml")}


def test_rank_rule_assigns_ranks_by_n(tmp_path):
    path = write_sweep(tmp_path, "[axes]\nn = [300, 2000]\n[ranks]\nrule = [[0, 1], [1000, 2]]\n")
    runs = studies.plan.Sweep.load(path).plan()
    assert {r.config.system.n: r.ranks for r in runs} == {300: 1, 2000: 2}


@pytest.mark.parametrize("body, message", [
    ("[axes]\nwavelength = [1, 2]\n", "axes.wavelength: unknown axis"),
    ("[axes]\nsteps = [100, 200]\n", "axes.steps: ambiguous; give the section: run.steps or structure_factor.steps"),
    ("[axes]\nsystem.colour = [1, 2]\n", "axes.system.colour: unknown axis"),
    ("[axes]\nphi = []\n", "empty axis"),
    ("[axes]\nphi = {start = 0.5, stop = 0.6, num = 0}\n", "empty axis"),
    ("[axes]\nsystem.seed = [1, 2]\n", "sweep.seeds"),
    ("[axes]\nphi = {start = 0.1, stop = 0.6, num = 40}\nn = {start = 200, stop = 400, num = 30}\n",
     "more than sweep.max_runs"),
    ("[axes]\nphi = [0.5, 3.0]\n", "system.phi"),
    ("[ranks]\nrule = [[0, 7]]\n", "the largest rank count that fits is 216 (the nearest below 7: 6)"),
    ("[ranks]\nrule = [[0, 0]]\n", "ranks.rule"),
    ("[slurm]\ntime = \"soon\"\n", "slurm.time"),
    ("[colours]\nx = 1\n", "unknown section"),
])
def test_bad_input_is_refused_before_anything_is_written(tmp_path, body, message):
    path = write_sweep(tmp_path, body)
    proc = cli("plan", path)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and proc.stderr.count("\n") == 1
    assert not (tmp_path / "runs").exists()


def test_yes_accepts_a_large_grid(tmp_path):
    path = write_sweep(tmp_path, "[axes]\nphi = {start = 0.4, stop = 0.6, num = 3}\n", head="max_runs = 2\n")
    with pytest.raises(studies.plan.SweepError, match="max_runs"):
        studies.plan.Sweep.load(path).plan()
    assert len(studies.plan.Sweep.load(path).plan(allow_many=True)) == 3


# ----------------------------------------------------------------------------------- local execution
def test_run_records_a_failure_and_finishes_the_others(tmp_path):
    # an initial-configuration file that exists (so planning accepts it) but is not an mpisim output:
    # the run starting from it fails at runtime
    (tmp_path / "broken.h5").write_text("not an HDF5 file\n")
    path = write_sweep(tmp_path, '[axes]\nphi = [0.45, 0.5]\nsystem.init = ["random", "broken.h5"]\n')
    proc = cli("run", path, "--cores", "2", "--progress-seconds", "1")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rows = {r["name"]: r for r in read_manifest(tmp_path / "runs" / "manifest.tsv")}
    failed = {n for n, r in rows.items() if r["status"] == "failed"}
    assert failed == {n for n in rows if "init=broken" in n} and len(failed) == 2
    assert all(r["status"] == "done" for n, r in rows.items() if n not in failed)
    for name in failed:
        error = rows[name]["error"]
        assert error.startswith("exit status 2: mpisim: error: system.init:") and "not an HDF5 file" in error, error
        assert error in (tmp_path / "runs" / name / "FAILED").read_text()
    assert "FAILED" in proc.stdout
    status = cli("status", path)
    assert status.returncode == 0 and "2/4 done" in status.stdout and rows[min(failed)]["error"] in status.stdout


def cut_short(out):
    """Run directories with a checkpoint and an unfinished output (a finished run keeps its last state)."""
    return [p.parent for p in out.glob("*/run.h5.ckpt")
            if not studies.status.output_finished(p.parent / "run.h5")]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_interrupted_sweep_skips_finished_runs_and_completes(tmp_path, sig):
    # checkpoints every 50 steps; the driver is stopped once a run is done and another has a checkpoint
    path = write_sweep(tmp_path, "[axes]\nphi = [0.4, 0.45, 0.5, 0.55]\n", steps=4000,
                       run="checkpoint_every = 50\n")
    out = tmp_path / "runs"
    manifest = out / "manifest.tsv"
    driver = subprocess.Popen([str(LAUNCH), "run", str(path), "--cores", "1", "--progress-seconds", "1"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd="/")
    deadline = time.time() + 300   # a cold numba cache compiles the kernels in the first run
    done = resumable = []
    while time.time() < deadline and not (done and resumable):
        time.sleep(0.05)
        if manifest.exists():
            done = [r for r in read_manifest(manifest) if r["status"] == "done"]
            resumable = cut_short(out)
    assert done and resumable, "no run finished and another checkpointed in time"
    driver.send_signal(sig)
    driver.communicate(timeout=60)
    assert driver.returncode != 0
    # The runs that were really cut short: a run may still have finished between the poll and the signal.
    resumable = cut_short(out)
    assert resumable, "every run finished before the driver was stopped"
    rows = read_manifest(manifest)
    assert any(r["status"] != "done" for r in rows)
    finished = {r["name"]: (tmp_path / "runs" / r["path"]).stat().st_mtime_ns
                for r in rows if studies.status.output_finished(tmp_path / "runs" / r["path"])}
    assert finished
    proc = cli("run", path, "--cores", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{len(finished)} already done" in proc.stdout
    rows = read_manifest(manifest)
    assert [r["status"] for r in rows] == ["done"] * 4
    for name, mtime in finished.items():
        assert (tmp_path / "runs" / name / "run.h5").stat().st_mtime_ns == mtime
    for run_dir in resumable:   # continued from its checkpoint, not started again
        attempts = [ln for ln in (run_dir / "run.log").read_text().splitlines() if ln.startswith("# ")]
        assert len(attempts) == 2 and attempts[1].endswith("--resume"), attempts
    assert not list((tmp_path / "runs").glob("*/RUNNING"))


def test_two_drivers_on_one_sweep_run_each_run_once(tmp_path):
    """A second driver started on a sweep that a first is running: each run is started once (one attempt
    line in its log), by whichever driver claims it first; both drivers finish with every run done."""
    path = write_sweep(tmp_path, "[axes]\nphi = [0.4, 0.45, 0.5, 0.55]\n", steps=3000)
    out = tmp_path / "runs"
    cmd = [str(LAUNCH), "run", str(path), "--cores", "1", "--progress-seconds", "1"]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd="/")
    deadline = time.time() + 300
    while time.time() < deadline and not list(out.glob("*/RUNNING")):
        time.sleep(0.05)
    second = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd="/")
    logs = [p.communicate(timeout=600)[0] for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, logs
    assert "running in another driver" in logs[1], logs[1]
    rows = read_manifest(out / "manifest.tsv")
    assert [r["status"] for r in rows] == ["done"] * 4
    for r in rows:
        attempts = [ln for ln in (out / r["name"] / "run.log").read_text().splitlines() if ln.startswith("# ")]
        assert len(attempts) == 1, (r["name"], attempts)
    assert not list(out.glob("*/RUNNING"))


def test_claim_is_exclusive_and_takes_over_a_dead_process_s_marker(tmp_path):
    assert studies.status.claim(tmp_path)
    assert not studies.status.claim(tmp_path)                     # held by this (live) process
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / "RUNNING").write_text(f'{{"host": "{os.uname().nodename}", "pid": {int(dead.stdout)}}}\n')
    assert studies.status.claim(tmp_path)                         # its process is gone: stale


# ---------------------------------------------------------------------------------------------- slurm
def test_slurm_scripts_for_a_multi_node_run(tmp_path):
    path = write_sweep(tmp_path, """
[axes]
n = [300, 4000]
[ranks]
rule = [[0, 1], [1000, 8]]
[slurm]
partition = "compute"
time = "02:00:00"
ranks_per_node = 4
modules = ["openmpi/4.1", "hdf5/1.12-mpi"]
account = "proj42"
launcher = "srun --mpi=pmix"
""")
    proc = cli("slurm", path, "--time", "03:30:00")
    assert proc.returncode == 0, proc.stderr
    d = tmp_path / "runs" / "slurm"
    assert "submit.sh" in proc.stdout
    multi = (d / "run_n=4000_seed=0.sbatch").read_text()
    for line in ("#SBATCH --nodes=2", "#SBATCH --ntasks=8", "#SBATCH --ntasks-per-node=4",
                 "#SBATCH --partition=compute", "#SBATCH --time=03:30:00", "#SBATCH --account=proj42",
                 "module load openmpi/4.1 hdf5/1.12-mpi"):
        assert line in multi.splitlines(), line
    assert "-m studies exec" in multi and "--ranks 8" in multi and "'srun --mpi=pmix'" in multi
    assert "#SBATCH --signal=B:TERM@120" in multi.splitlines()
    assert str(tmp_path / "runs" / "n=4000_seed=0") in multi and "--array" not in multi
    array = (d / "array_r1.sbatch").read_text()
    assert "#SBATCH --array=0-0" in array and "#SBATCH --nodes=1" in array
    assert (d / "array_r1.txt").read_text().split() == [str(tmp_path / "runs" / "n=300_seed=0")]
    submit = (d / "submit.sh").read_text()
    assert "sbatch --parsable array_r1.sbatch" in submit and "run_n=4000_seed=0.sbatch" in submit
    assert "afterany" in submit and os.access(d / "submit.sh", os.X_OK)
    # the command the job runs for the 8-rank run
    cmd = studies.local.run_command(tmp_path / "runs" / "n=4000_seed=0", "fresh",
                                    studies.slurm.job_prefix(8, "srun --mpi=pmix"))
    assert cmd[:4] == ["srun", "--mpi=pmix", "-n", "8"]
    assert cmd[-2:] == [str(tmp_path / "runs" / "n=4000_seed=0" / "run.h5"), "--quiet"]
    # a job's exec of the single-rank run (mpirun launcher here) finishes it and status sees it
    run_dir = tmp_path / "runs" / "n=300_seed=0"
    proc = subprocess.run([sys.executable, "-m", "studies", "exec", str(run_dir), "--ranks", "1"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert studies.status.output_finished(run_dir / "run.h5") and not (run_dir / "RUNNING").exists()
    rows = {r["name"]: r["status"] for r in read_manifest(tmp_path / "runs" / "manifest.tsv")}
    assert rows == {"n=300_seed=0": "pending", "n=4000_seed=0": "pending"}   # until status refreshes it
    assert cli("status", path).returncode == 0
    rows = {r["name"]: r["status"] for r in read_manifest(tmp_path / "runs" / "manifest.tsv")}
    assert rows == {"n=300_seed=0": "done", "n=4000_seed=0": "pending"}


# ------------------------------------------------------------------------------------- the package
def test_studies_imports_no_mpi():
    """The study tool runs on login nodes and drives mpirun: it never initialises (or imports) MPI."""
    code = "import sys, studies.cli, studies.slurm; print(sorted(m for m in sys.modules if 'mpi4py' in m))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


def test_manifest_steps_column_is_run_steps(tmp_path):
    """structure_factor.steps (a list) must not fill the manifest's steps column (it used to be empty)."""
    path = write_sweep(tmp_path, "[base.structure_factor]\nevery = 10\n[axes]\nphi = [0.45, 0.5]\n", steps=70)
    assert studies.cli.main(["plan", str(path)]) == 0
    assert [r["steps"] for r in read_manifest(tmp_path / "runs" / "manifest.tsv")] == ["70", "70"]


OPEN_MPI_WITHOUT_PMI = """\
[vm:15733] OPAL ERROR: Unreachable in file ext3x_client.c at line 112
--------------------------------------------------------------------------
The application appears to have been direct launched using "srun",
but OMPI was not built with SLURM's PMI support and therefore cannot
execute. There are several options for building PMI support under

Please configure as appropriate and try again.
--------------------------------------------------------------------------
*** An error occurred in MPI_Init_thread
*** on a NULL communicator
[vm:15733] Local abort before MPI_INIT completed completed successfully, but am not able to aggregate
srun: error: vm: tasks 0-1: Exited with exit code 1
"""
MPISIM_FAILED = """\
mpisim: rank 1 failed: OSError: Unable to open file (file signature not found)
Traceback (most recent call last):
  File "/x/mpisim/cli.py", line 90, in guarded
OSError: Unable to open file (file signature not found)
--------------------------------------------------------------------------
MPI_ABORT was invoked on rank 1 in communicator MPI_COMM_WORLD
with errorcode 1.
--------------------------------------------------------------------------
"""


@pytest.mark.parametrize("log, cause", [
    (OPEN_MPI_WITHOUT_PMI, 'The application appears to have been direct launched using "srun", but OMPI was '
                           "not built with SLURM's PMI support and therefore cannot execute. There are several "
                           "options for building PMI support under"),
    (MPISIM_FAILED, "mpisim: rank 1 failed: OSError: Unable to open file (file signature not found)"),
    ("Traceback (most recent call last):\n  File \"x.py\", line 1\nModuleNotFoundError: No module named 'h5py'\n"
     "srun: error: vm: task 0: Exited with exit code 1\n", "ModuleNotFoundError: No module named 'h5py'"),
    ("", "no output"),
])
def test_failure_cause_is_the_program_s_own_line(log, cause):
    assert studies.local.failure_cause(log.splitlines()) == cause


def test_job_launcher_is_decided_in_the_job(monkeypatch):
    """1 rank: no launcher; several: srun --mpi=pmix if srun offers PMIx, else mpirun in the allocation;
    an explicit launcher as given."""
    monkeypatch.setattr(studies.slurm, "srun_mpi_plugins", lambda: {"none", "pmi2", "pmix", "pmix_v4"})
    assert studies.slurm.job_prefix(1) == [] and studies.slurm.job_prefix(1, "srun --mpi=pmi2") == []
    assert studies.slurm.job_prefix(4) == ["srun", "--mpi=pmix", "-n", "4"]
    monkeypatch.setattr(studies.slurm, "srun_mpi_plugins", lambda: {"none", "pmi2"})
    assert studies.slurm.job_prefix(4)[:3] == ["mpirun", "-n", "4"] and "--oversubscribe" not in \
        studies.slurm.job_prefix(4)
    assert studies.slurm.job_prefix(4, "srun --mpi=pmi2") == ["srun", "--mpi=pmi2", "-n", "4"]


def test_short_runs_are_bundled_into_array_tasks(tmp_path):
    path = write_sweep(tmp_path, "[axes]\nphi = [0.4, 0.42, 0.44, 0.46, 0.48]\n")
    proc = cli("slurm", path, "--runs-per-task", "2", "--signal-seconds", "300")
    assert proc.returncode == 0, proc.stderr
    d = tmp_path / "runs" / "slurm"
    array = (d / "array_r1.sbatch").read_text().splitlines()
    assert "#SBATCH --array=0-2" in array and "#SBATCH --signal=B:TERM@300" in array
    assert any("--per-task 2" in ln and '--task "$SLURM_ARRAY_TASK_ID"' in ln for ln in array)
    listed = (d / "array_r1.txt").read_text().split()
    tasks = [studies.slurm.task_runs(d / "array_r1.txt", t, 2) for t in range(3)]
    assert tasks == [listed[0:2], listed[2:4], listed[4:5]]
    with pytest.raises(studies.plan.SweepError, match="array task 3 has no runs"):
        studies.slurm.task_runs(d / "array_r1.txt", 3, 2)
    assert cli("slurm", path, "--runs-per-task", "0").returncode == 2


@pytest.mark.skipif(not Path("/proc/self/autogroup").exists(), reason="kernel without autogroups")
def test_a_niced_driver_s_runs_get_its_nice_in_their_own_session():
    """Each run is a session (autogroup) of its own: the driver's nice must reach the group, or a nice-19
    sweep shares the CPU equally with everything else where autogroups are on (docs/sweeps.md)."""
    script = ("import subprocess, studies.local; p = subprocess.Popen(['cat', '/proc/self/autogroup'], "
              "start_new_session=True, preexec_fn=studies.local._child_preexec, stdout=subprocess.PIPE); "
              "print(p.communicate()[0].decode().strip())")
    out = subprocess.run(["nice", "-n", "7", sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}).stdout.strip()
    assert out.endswith(f"nice {min(os.nice(0) + 7, 19)}"), out     # (nice adds to the caller's nice)


@pytest.mark.parametrize("stop", ["TERM", "INT"])
def test_figure_command_stops_on_a_signal(tmp_path, stop):
    """launch/examples/figure, stopped by SIGTERM or SIGINT (Ctrl-C) to the script alone while a tier
    runs: the tier gets SIGTERM and is waited for (its runs checkpoint), no later tier starts, the script
    exits with 128 + the signal and says so, with the stopped tier's wall and CPU time (the CPU its
    stand-in spends on checkpointing counts). The tiers are stand-ins for launch/sweep in a copy of the
    launch tree."""
    import shutil
    launch = tmp_path / "launch"
    (launch / "examples" / "fig5b" / "demo").mkdir(parents=True)
    shutil.copy2(TOP / "launch" / "examples" / "figure", launch / "examples" / "figure")
    shutil.copy2(TOP / "launch" / "_env.sh", launch / "_env.sh")
    for tier in ("small", "n4000"):
        (launch / "examples" / "fig5b" / "demo" / f"{tier}.toml").write_text("")
    log = tmp_path / "tiers.log"
    sweep = launch / "sweep"
    sweep.write_text(f"""#!/usr/bin/env bash
name=$(basename "$2" .toml)
echo "start $name" >> {log}
checkpoint() {{ for ((i = 0; i < 200000; i++)); do :; done; }}   # a fixed amount of CPU work
trap 'trap "" TERM; echo "TERM $name" >> {log}; checkpoint; echo "checkpointed $name" >> {log}; exit 143' TERM
sleep 60 & wait $!    # (left behind by a failing test: ends by itself)
""")
    sweep.chmod(0o755)
    env = dict(os.environ, TIERS="small n4000", OUT=str(tmp_path / "out"), MPISIM_VENV=sys.prefix)
    proc = subprocess.Popen(["bash", str(launch / "examples" / "figure"), "fig5b", "demo"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.time() + 30
        while not (log.exists() and "start small" in log.read_text()):
            assert time.time() < deadline and proc.poll() is None
            time.sleep(0.1)
        proc.send_signal(signal.Signals[f"SIG{stop}"])
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        subprocess.run(["pkill", "-KILL", "-f", str(sweep)])    # nothing left running when the test fails
    assert proc.returncode == 128 + signal.Signals[f"SIG{stop}"], stderr
    assert f"figure fig5b: stopped by SIG{stop}; the same command resumes" in stderr
    timed = re.search(r"== launch/examples/fig5b/demo/small.toml: wall ([0-9.]+) s, CPU user ([0-9.]+) s", stdout)
    assert timed and float(timed[1]) > 0.1 and float(timed[2]) > 0.1, stdout    # the tier ran, and was timed
    # the tier was waited for to its end, and nothing came after it
    assert log.read_text().splitlines() == ["start small", "TERM small", "checkpointed small"]
