"""Checkpoints and exact restart (mpisim/io/checkpoint.py, Simulation.resume, `mpisim resume`)."""
import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from mpisim import RunConfig, Simulation
from mpisim.config import ConfigError
from mpisim.io import checkpoint_path, read_checkpoint

from .conftest import clean_env, mpirun_command

BIN = Path(sys.executable).parent
MPISIM = str(BIN / "mpisim")


def small_config(path, **run):
    """Dense enough to stay active (every step moves particles), small enough to be fast."""
    r = {"steps": 120, "log_every": 3, "stop_when_absorbed": False, "checkpoint_every": 25,
         "progress_seconds": 0.0}
    r.update(run)
    return RunConfig.from_dict({
        "system": {"n": 600, "phi": 0.55, "dim": 3, "seed": 7},
        "dynamics": {"scheme": "bro-pairwise", "kick_size": 0.2},
        "run": r,
        "output": {"path": str(path), "snapshot_every": 20, "flush_every": 10},
    })


def datasets(path):
    """{name: array} of every dataset in an HDF5 file."""
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def assert_same_run(a, b):
    da, db = datasets(a), datasets(b)
    assert sorted(da) == sorted(db)
    for name in da:
        assert da[name].dtype == db[name].dtype, name
        assert np.array_equal(da[name], db[name]), name


@pytest.mark.serial
@pytest.mark.parametrize("crash_after", [37, 50, 99])
def test_resume_equals_uninterrupted(tmp_path, crash_after):
    """A run stopped after ``crash_after`` steps (its file holding frames and rows past the checkpoint)
    and resumed equals the uninterrupted run, file and in-memory series."""
    ref = Simulation(small_config(tmp_path / "ref.h5"), output=str(tmp_path / "ref.h5")).run()
    cfg = small_config(tmp_path / "cut.h5")
    Simulation(cfg, output=str(tmp_path / "cut.h5")).run(steps=crash_after)
    ckpt_step = read_checkpoint(checkpoint_path(tmp_path / "cut.h5"))[0]["step"]
    assert ckpt_step == (crash_after - 1) // 25 * 25  # none at the last step of a run() call
    sim = Simulation.resume(cfg)
    assert sim.step == ckpt_step
    sim.run()
    assert_same_run(tmp_path / "ref.h5", tmp_path / "cut.h5")
    for k, v in ref.observables.items():
        assert np.array_equal(v, sim.observables[k]), k
    kept = read_checkpoint(checkpoint_path(tmp_path / "cut.h5"))[0]["step"]
    assert kept == 120, "a finished run keeps its last state (run.keep_checkpoint; tests/test_carry_on.py)"


@pytest.mark.serial
@pytest.mark.parametrize("source", ["toml", "output"])
def test_resume_from_a_path(tmp_path, source):
    """Simulation.resume takes the path of a TOML config, or of the output file itself (the parameters
    stored in it: the Python form of `mpisim resume OUT.h5`)."""
    ref = Simulation(small_config(tmp_path / "ref.h5"), output=str(tmp_path / "ref.h5")).run()
    cfg = small_config(tmp_path / "cut.h5")
    Simulation(cfg, output=str(tmp_path / "cut.h5")).run(steps=60)
    toml = tmp_path / "c.toml"
    toml.write_text(cfg.to_toml())
    sim = Simulation.resume(str(toml) if source == "toml" else tmp_path / "cut.h5")
    assert sim.step == 50 and sim.config == cfg
    sim.run()
    assert_same_run(tmp_path / "ref.h5", tmp_path / "cut.h5")
    assert np.array_equal(ref.observables["activity"], sim.observables["activity"])


@pytest.mark.serial
def test_a_run_until_steady_resumes_to_the_same_stop(tmp_path):
    """run.stop_when_steady decides on the recorded series, which a resume reads back from the file:
    interrupted and resumed, the run stops at the same step with the same file."""
    def cfg(path):
        return RunConfig.from_dict({
            "system": {"n": 300, "phi": 0.78, "dim": 2, "seed": 2},
            "dynamics": {"scheme": "bro-pairwise", "kick_size": 0.1},
            "run": {"steps": 20000, "log_every": 10, "progress_seconds": 0.0, "checkpoint_every": 250,
                    "stop_when_steady": True, "steady_every": 500},
            "output": {"path": str(path), "snapshot_every": 300}})
    ref = Simulation(cfg(tmp_path / "ref.h5")).run()
    assert ref.stop_reason == "steady" and ref.step < 20000
    Simulation(cfg(tmp_path / "cut.h5")).run(steps=ref.step - 200)
    sim = Simulation.resume(tmp_path / "cut.h5")
    assert sim.step == (ref.step - 201) // 250 * 250
    sim.run()
    assert sim.step == ref.step and sim.stop_reason == "steady"
    assert_same_run(tmp_path / "ref.h5", tmp_path / "cut.h5")
    assert read_checkpoint(checkpoint_path(tmp_path / "cut.h5"))[0]["step"] == ref.step, "a steady run is complete"


@pytest.mark.serial
def test_resume_from_a_path_that_is_no_output(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        Simulation.resume(tmp_path / "none.h5")
    with h5py.File(tmp_path / "empty.h5", "w"):
        pass
    with pytest.raises(ConfigError, match="not an mpisim output"):
        Simulation.resume(str(tmp_path / "empty.h5"))


@pytest.mark.serial
def test_resume_without_the_init_file(tmp_path):
    """A run started from system.init resumes after that file is gone (the box is in the checkpoint)."""
    Simulation(small_config(tmp_path / "start.h5", steps=10), output=str(tmp_path / "start.h5")).run()

    def from_init(path):
        cfg = small_config(path)
        return cfg.replace(system=dataclasses.replace(cfg.system, init=str(tmp_path / "start.h5")))
    Simulation(from_init(tmp_path / "ref.h5"), output=str(tmp_path / "ref.h5")).run()
    cfg = from_init(tmp_path / "cut.h5")
    Simulation(cfg, output=str(tmp_path / "cut.h5")).run(steps=60)
    os.remove(tmp_path / "start.h5")
    Simulation.resume(cfg).run()
    assert_same_run(tmp_path / "ref.h5", tmp_path / "cut.h5")


@pytest.mark.serial
def test_checkpoint_holds_exact_state(tmp_path):
    cfg = small_config(tmp_path / "o.h5", steps=30)
    sim = Simulation(cfg, output=str(tmp_path / "o.h5"))
    sim.run(steps=26)
    meta, cols = read_checkpoint(checkpoint_path(tmp_path / "o.h5"))
    assert meta["step"] == 25 and meta["n_total"] == 600
    ids, pos, img, rad, x0, _ = sim.state.owned(3)
    # The live state moved one step on; the checkpoint must hold exact float64 rows of step 25.
    again = Simulation.resume(cfg)
    ids2, pos2, img2, rad2, x02, _ = again.state.owned(3)
    assert np.array_equal(cols["ids"], ids2) and np.array_equal(cols["pos"], pos2)
    assert np.array_equal(cols["image"], img2) and np.array_equal(cols["x0"], x02)
    assert cols["pos"].dtype == np.float64
    assert not np.array_equal(pos, pos2)
    assert not os.path.exists(checkpoint_path(tmp_path / "o.h5") + ".tmp")


@pytest.mark.serial
def test_checkpoint_minutes(tmp_path):
    """Wall-time checkpoints: with a tiny interval every logged step after the first checkpoints."""
    cfg = small_config(tmp_path / "o.h5", steps=40, checkpoint_every=0, checkpoint_minutes=1e-9)
    Simulation(cfg, output=str(tmp_path / "o.h5")).run(steps=10)
    assert read_checkpoint(checkpoint_path(tmp_path / "o.h5"))[0]["step"] == 9


@pytest.mark.serial
def test_resume_refuses_other_parameters(tmp_path):
    cfg = small_config(tmp_path / "o.h5")
    Simulation(cfg, output=str(tmp_path / "o.h5")).run(steps=30)
    other = RunConfig.from_dict({**{k: dict(v) for k, v in cfg.to_dict().items()},
                                 "dynamics": {"scheme": "bro-pairwise", "kick_size": 0.3},
                                 "run": {**cfg.to_dict()["run"], "steps": 500}})
    before = datasets(tmp_path / "o.h5")
    with pytest.raises(ConfigError, match=r"dynamics\.kick_size") as refused:
        Simulation.resume(other)
    assert "run.steps" not in str(refused.value), "a new run.steps carries the run on (test_carry_on.py)"
    after = datasets(tmp_path / "o.h5")
    assert all(np.array_equal(before[k], after[k]) for k in before), "a refused resume wrote nothing"


@pytest.mark.serial
def test_resume_refuses_a_file_without_an_observable(tmp_path):
    """A file written before an observable was added (here: speed_squared removed) cannot be resumed."""
    cfg = small_config(tmp_path / "o.h5")
    Simulation(cfg, output=str(tmp_path / "o.h5")).run(steps=30)
    with h5py.File(tmp_path / "o.h5", "r+") as f:
        del f["observables/speed_squared"]
    with pytest.raises(ConfigError, match=r"older mpisim without /observables/speed_squared"):
        Simulation.resume(cfg)


@pytest.mark.serial
def test_cli_resume_errors(tmp_path):
    cfg = small_config(tmp_path / "o.h5", checkpoint_every=0)
    toml = tmp_path / "c.toml"
    toml.write_text(cfg.to_toml())
    run = [MPISIM, "run", str(toml), "--quiet"]
    assert subprocess.run(run, capture_output=True).returncode == 0
    again = subprocess.run(run, capture_output=True, text=True)
    assert again.returncode == 2 and "--overwrite" in again.stderr
    done = subprocess.run([MPISIM, "resume", str(tmp_path / "o.h5")], capture_output=True, text=True)
    assert done.returncode == 2 and "finished" in done.stderr
    changed = subprocess.run(run + ["--resume", "--set", "system.seed=8"], capture_output=True, text=True)
    assert changed.returncode == 2 and "system.seed" in changed.stderr
    missing = subprocess.run([MPISIM, "resume", str(tmp_path / "none.h5")], capture_output=True, text=True)
    assert missing.returncode == 2 and "none.h5" in missing.stderr


def _kill_at_checkpoint(cmd, out, tmp_path):
    """Start ``cmd``, SIGKILL it as soon as its first checkpoint exists; return the checkpoint step."""
    ckpt = Path(checkpoint_path(out))
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "killed.err", "w"))
    deadline = time.monotonic() + 120
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert proc.poll() is None, "the run ended before it could be killed: make it longer"
    time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return read_checkpoint(ckpt)[0]["step"]


@pytest.mark.serial
@pytest.mark.parametrize("resume_ranks", [1, 2])
def test_sigkill_and_resume(tmp_path, resume_ranks):
    """The CLI killed with SIGKILL mid-run leaves a readable file; `mpisim resume` (also on 2 ranks)
    finishes it exactly as an uninterrupted run."""
    cfg = RunConfig.from_dict({
        "system": {"n": 2000, "phi": 0.55, "dim": 3, "seed": 11},
        "dynamics": {"scheme": "bro-pairwise", "kick_size": 0.2},
        "run": {"steps": 200, "log_every": 2, "stop_when_absorbed": False, "checkpoint_every": 30,
                "progress_seconds": 0.0},
        "output": {"path": str(tmp_path / "killed.h5"), "snapshot_per_decade": 5, "flush_every": 7},
    })
    toml = tmp_path / "c.toml"
    toml.write_text(cfg.to_toml())
    ref = tmp_path / "ref.h5"
    subprocess.run([MPISIM, "run", str(toml), "-o", str(ref), "--quiet"], check=True)
    out = tmp_path / "killed.h5"
    step = _kill_at_checkpoint([MPISIM, "run", str(toml), "--quiet"], out, tmp_path)
    assert 0 < step < 200
    # Readable up to its last flush: a prefix of the uninterrupted series.
    with h5py.File(out, "r") as f, h5py.File(ref, "r") as g:
        n = f["observables/energy/step"].shape[0]
        assert n >= step // 2
        assert np.array_equal(f["observables/energy/value"][:], g["observables/energy/value"][:n])
    cmd = ([MPISIM] if resume_ranks == 1 else mpirun_command(resume_ranks) + [MPISIM]) + ["resume", str(out), "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=clean_env())
    assert done.returncode == 0, done.stderr[-3000:]
    with h5py.File(out, "r") as f:
        prov = f["parameters/provenance"].attrs
        assert list(prov["resumed_at_step"]) == [step]
        assert list(prov["resumed_mpi_size"]) == [resume_ranks]
    assert_same_run(ref, out)


@pytest.mark.mpi(min_size=2)
def test_resume_in_parallel(tmp_path):
    """Checkpoint written collectively on P ranks, resumed on P ranks in-process: the same file as an
    uninterrupted run."""
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    base = Path(comm.bcast(str(tmp_path), root=0))
    ref = small_config(base / "ref.h5", steps=80)
    Simulation(ref, comm=comm).run()
    cfg = small_config(base / "cut.h5", steps=80)
    Simulation(cfg, comm=comm).run(steps=60)
    sim = Simulation.resume(cfg, comm=comm)
    assert sim.step == 50
    sim.run()
    comm.Barrier()
    if comm.rank == 0:
        assert_same_run(base / "ref.h5", base / "cut.h5")


def _start_and_wait_for_frames(command, out, reference, sigint):
    """Start ``command`` with SIGINT set to ``sigint`` (a background job of a shell, as under CI, has it
    ignored) and wait until ``out`` holds a few of the frames of the finished ``reference`` (the run's
    signal handlers are installed before the first)."""
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=clean_env(),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, sigint))
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline and \
            not (out.exists() and out.stat().st_size > reference.stat().st_size // 7):
        time.sleep(0.005)
    assert proc.poll() is None, "the run ended before the signal: make it longer"
    return proc


@pytest.mark.serial
@pytest.mark.parametrize("ranks, sig", [(1, signal.SIGTERM), (2, signal.SIGUSR1), (1, signal.SIGINT)])
def test_signal_checkpoints_stops_and_resume_is_lossless(tmp_path, ranks, sig):
    """`mpisim run` on SIGTERM (a batch system's warning before the time limit), SIGUSR1 (which mpirun
    forwards to its ranks) or SIGINT (Ctrl-C) writes a checkpoint where it is, exits with 128 + the
    signal number, and `mpisim resume` finishes it exactly as an uninterrupted run. No periodic
    checkpoints: the only one is the signal's."""
    cfg = RunConfig.from_dict({
        "system": {"n": 2000, "phi": 0.55, "dim": 3, "seed": 5},
        "dynamics": {"scheme": "bro-pairwise", "kick_size": 0.2},
        "run": {"steps": 1000, "log_every": 4, "stop_when_absorbed": False, "progress_seconds": 0.0},
        "output": {"path": str(tmp_path / "cut.h5"), "snapshot_every": 50, "flush_every": 20},
    })
    toml = tmp_path / "c.toml"
    toml.write_text(cfg.to_toml())
    launch = [] if ranks == 1 else mpirun_command(ranks)
    subprocess.run(launch + [MPISIM, "run", str(toml), "-o", str(tmp_path / "ref.h5"), "--quiet"], check=True,
                   env=clean_env())
    out = tmp_path / "cut.h5"
    proc = _start_and_wait_for_frames(launch + [MPISIM, "run", str(toml), "--quiet"], out, tmp_path / "ref.h5",
                                      signal.SIG_DFL)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, err[-3000:]
    assert f"stopped by {signal.Signals(sig).name}" in err and "mpisim resume" in err
    step = read_checkpoint(checkpoint_path(out))[0]["step"]
    assert 0 < step < 1000
    with h5py.File(out, "r") as f:
        assert not f["parameters/provenance"].attrs["end_time"]
    done = subprocess.run([MPISIM, "resume", str(out), "--quiet"], capture_output=True, text=True, env=clean_env())
    assert done.returncode == 0, done.stderr[-3000:]
    with h5py.File(out, "r") as f:
        assert list(f["parameters/provenance"].attrs["resumed_at_step"]) == [step]
    assert_same_run(tmp_path / "ref.h5", out)


@pytest.mark.serial
def test_an_ignored_sigint_stays_ignored(tmp_path):
    """A run whose SIGINT is ignored (a shell's background job: `mpisim run c.toml &`) is not stopped by
    it: it runs to its end, as without mpisim's handler."""
    cfg = small_config(tmp_path / "run.h5", steps=3000, checkpoint_every=0)
    toml = tmp_path / "c.toml"
    toml.write_text(cfg.to_toml())
    subprocess.run([MPISIM, "run", str(toml), "-o", str(tmp_path / "ref.h5"), "--quiet"], check=True, env=clean_env())
    proc = _start_and_wait_for_frames([MPISIM, "run", str(toml), "--quiet"], tmp_path / "run.h5",
                                      tmp_path / "ref.h5", signal.SIG_IGN)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "stopped by" not in err, err[-3000:]
    assert_same_run(tmp_path / "ref.h5", tmp_path / "run.h5")


def test_a_second_sigint_interrupts_at_once(tmp_path):
    """Simulation.stop_on_signals with SIGINT: the first asks for a checkpoint and stop at the next step,
    the second raises KeyboardInterrupt where the program is (the user insists)."""
    previous = signal.getsignal(signal.SIGINT)
    sim = Simulation(small_config(tmp_path / "run.h5"), write=False)
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        sim.stop_on_signals((signal.SIGINT,))
        os.kill(os.getpid(), signal.SIGINT)
        assert sim.interrupt_reason == "SIGINT"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)       # the handler runs in the main thread between bytecodes: here at the latest
    finally:
        signal.signal(signal.SIGINT, previous)
        sim.close()
