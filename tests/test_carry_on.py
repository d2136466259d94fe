"""Carrying a finished run on (run.keep_checkpoint, Simulation.resume(steps=, overrides=), `mpisim resume
--steps K`): the file of a run made in two pieces equals the file of one run of the whole length."""
import dataclasses
import importlib.util
import json
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
from mpisim.io import checkpoint_path

from tests.test_restart import MPISIM, assert_same_run, datasets, small_config

_DATA = Path(__file__).with_name("data")
_spec = importlib.util.spec_from_file_location("make_trajectory_hashes", _DATA / "make_trajectory_hashes.py")
cases = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cases)
STORED = json.loads(cases.HASHES.read_text())["cases"]


def piece(name, path, steps):
    """Case ``name`` of the trajectory hashes run to ``steps`` (< its STEPS) without checkpoints on
    the way: the only state left is the one kept at the end."""
    c = {k: dict(v) for k, v in cases.CASES[name].items()}
    c["run"].update(steps=steps, checkpoint_every=0)
    c["output"]["path"] = str(path)
    return RunConfig.from_dict(c)


@pytest.mark.serial
@pytest.mark.parametrize("name", cases.RESUMED)
def test_carried_on_run_is_the_recorded_trajectory(name, tmp_path):
    """Every family (momentum, reciprocal PGD noise, Langevin among them): 33 steps, kept, carried on
    to STEPS = 50 reproduces the recorded hashes of the straight 50-step run."""
    path = tmp_path / "run.h5"
    Simulation(piece(name, path, 33)).run().close()
    assert Path(checkpoint_path(path)).is_file(), "a complete run keeps its last state by default"
    sim = Simulation.resume(path, steps=cases.STEPS)
    assert sim.step == 33
    sim.run()
    got = cases.digests(sim)
    sim.close()
    for key in ("state", "observables"):
        assert got[key] == STORED[name][key], f"{name}: the carried-on {key} differs from the recorded run"


@pytest.mark.serial
def test_carried_on_file_equals_one_run(tmp_path):
    """Ends off the snapshot (20) and log (3) grids: the first piece's last frame and row at step 125
    are dropped and written again as the longer run writes them. /parameters say the new length and
    the provenance when it was set."""
    Simulation(small_config(tmp_path / "ref.h5", steps=240, checkpoint_every=0)).run()
    Simulation(small_config(tmp_path / "two.h5", steps=125, checkpoint_every=0)).run()
    sim = Simulation.resume(tmp_path / "two.h5", steps=240)
    sim.run()
    assert_same_run(tmp_path / "ref.h5", tmp_path / "two.h5")
    with h5py.File(tmp_path / "two.h5") as f:
        prov = f["parameters/provenance"].attrs
        assert list(prov["carried_on_at_step"]) == [125] and list(prov["carried_on_to_steps"]) == [240]
        assert f["parameters/run"].attrs["steps"] == 240 and prov["last_step"] == 240
    assert RunConfig.from_stored(__import__("tomllib").loads(
        h5py.File(tmp_path / "two.h5")["parameters"].attrs["config_toml"])).run.steps == 240


@pytest.mark.serial
def test_steady_run_carried_on_without_the_steady_stop(tmp_path):
    """A run stopped as steady, carried on with run.stop_when_steady = false, equals one run made
    without the steady stop to the same step (the stop decides where a run ends, not its steps)."""
    def cfg(path, **run):
        r = {"steps": 20000, "log_every": 10, "progress_seconds": 0.0, "stop_when_steady": True,
             "steady_every": 500}
        r.update(run)
        return RunConfig.from_dict({
            "system": {"n": 300, "phi": 0.78, "dim": 2, "seed": 2},
            "dynamics": {"scheme": "bro-pairwise", "kick_size": 0.1},
            "run": r, "output": {"path": str(path), "snapshot_every": 300}})
    first = Simulation(cfg(tmp_path / "two.h5")).run()
    assert first.stop_reason == "steady"
    stop = first.step
    first.close()
    end = stop + 700
    with pytest.raises(ConfigError, match="run.stop_when_steady=false"):
        Simulation.resume(tmp_path / "two.h5", steps=end)
    Simulation.resume(tmp_path / "two.h5", steps=end, overrides=["run.stop_when_steady=false"]).run().close()
    Simulation(cfg(tmp_path / "ref.h5", steps=end, stop_when_steady=False)).run().close()
    assert_same_run(tmp_path / "ref.h5", tmp_path / "two.h5")


@pytest.mark.serial
def test_what_cannot_be_carried_on(tmp_path):
    """Refused (ConfigError, nothing written): an unchanged length, a key that changes results, an
    absorbed run, a run whose last state was not kept."""
    cfg = small_config(tmp_path / "o.h5", steps=40, checkpoint_every=0)
    Simulation(cfg).run().close()
    before = datasets(tmp_path / "o.h5")
    with pytest.raises(ConfigError, match=r"finished run \(last step 40\); to carry it on give a larger run.steps"):
        Simulation.resume(tmp_path / "o.h5")
    with pytest.raises(ConfigError, match=r"a resume can change only .*run\.steady_min_steps"):
        Simulation.resume(tmp_path / "o.h5", steps=80, overrides=["dynamics.kick_size=0.3"])
    after = datasets(tmp_path / "o.h5")
    assert all(np.array_equal(before[k], after[k]) for k in before)

    dropped = small_config(tmp_path / "d.h5", steps=40, checkpoint_every=0, keep_checkpoint=False)
    Simulation(dropped).run().close()
    assert not Path(checkpoint_path(tmp_path / "d.h5")).exists()
    with pytest.raises(ConfigError, match="without its last state"):
        Simulation.resume(tmp_path / "d.h5", steps=80)

    absorbed = RunConfig.from_dict({"system": {"n": 100, "phi": 0.2, "dim": 2, "seed": 1},
                                    "dynamics": {"scheme": "bro-pairwise", "kick_size": 0.2},
                                    "run": {"steps": 5000, "progress_seconds": 0.0},
                                    "output": {"path": str(tmp_path / "a.h5")}})
    sim = Simulation(absorbed).run()
    assert sim.stop_reason == "absorbed"
    sim.close()
    assert not Path(checkpoint_path(tmp_path / "a.h5")).exists(), "an absorbed run keeps no state"
    with pytest.raises(ConfigError, match="nothing moves any more"):
        Simulation.resume(tmp_path / "a.h5", steps=10000)


@pytest.mark.serial
def test_cli_carries_on_and_overwrite_keeps_the_state(tmp_path):
    """`mpisim resume OUT.h5 --steps K`; an --overwrite run's kept state moves with its file over OUT.h5."""
    cfg = small_config(tmp_path / "o.h5", steps=60, checkpoint_every=0)
    toml = tmp_path / "c.toml"
    toml.write_text(cfg.to_toml())
    assert subprocess.run([MPISIM, "run", str(toml), "--quiet"]).returncode == 0
    # again, replacing the file: the new run's state is the one kept
    assert subprocess.run([MPISIM, "run", str(toml), "--quiet", "--overwrite"]).returncode == 0
    assert not Path(str(tmp_path / "o.h5") + ".new.ckpt").exists()
    bad = subprocess.run([MPISIM, "resume", str(tmp_path / "o.h5"), "--steps", "120", "--set", "system.seed=3"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "system.seed" in bad.stderr and "run.stop_when_steady" in bad.stderr
    more = subprocess.run([MPISIM, "resume", str(tmp_path / "o.h5"), "--steps", "120", "--quiet"],
                          capture_output=True, text=True)
    assert more.returncode == 0, more.stderr
    assert "active at step 120" in more.stderr
    info = subprocess.run([MPISIM, "info", str(tmp_path / "o.h5")], capture_output=True, text=True).stdout
    assert "finished at step 120; last state kept" in info and "carried on  at step 60 to 120 steps" in info, info
    Simulation(small_config(tmp_path / "ref.h5", steps=120, checkpoint_every=0)).run().close()
    assert_same_run(tmp_path / "ref.h5", tmp_path / "o.h5")


@pytest.mark.mpi(min_size=2)
def test_carried_on_in_parallel(tmp_path):
    """A piece made on every rank of the job, carried on there: the recorded trajectory."""
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    path = Path(comm.bcast(str(tmp_path), root=0)) / "run.h5"
    name = "sgd-momentum-2d"
    Simulation(piece(name, path, 33), comm=comm).run().close()
    sim = Simulation.resume(path, comm=comm, steps=cases.STEPS)
    sim.run()
    got = cases.digests(sim)
    sim.close()
    for key in ("state", "observables"):
        assert got[key] == STORED[name][key]


@pytest.mark.serial
def test_steady_continuation_carries_a_kept_run_on(tmp_path):
    """launch/steady_continuation.py on a run directory that kept its last state: the continuation is
    copied and carried on (one resume, only the new steps), the original is untouched, and the result
    equals one run made without the steady stop to the target step."""
    import csv
    src = tmp_path / "runs" / "r1"
    src.mkdir(parents=True)
    cfg = RunConfig.from_dict({
        "system": {"n": 300, "phi": 0.78, "dim": 2, "seed": 2},
        "dynamics": {"scheme": "bro-pairwise", "kick_size": 0.1},
        "run": {"steps": 20000, "log_every": 10, "progress_seconds": 0.0, "stop_when_steady": True,
                "steady_every": 500},
        "output": {"path": "run.h5", "snapshot_every": 300}})
    (src / "config.toml").write_text(cfg.to_toml())
    with open(src / "run.log", "w") as log:
        assert subprocess.run([MPISIM, "run", "config.toml", "--quiet"], cwd=src, stderr=log).returncode == 0
    original = (src / "run.h5").read_bytes()
    script = Path(__file__).parents[1] / "launch" / "steady_continuation.py"
    out = tmp_path / "cont"
    proc = subprocess.run([sys.executable, str(script), str(out), str(src), "--factor", "1.5",
                           "--mpisim", MPISIM, "-o", str(tmp_path / "t.csv")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    (row,) = csv.DictReader(open(tmp_path / "t.csv"))
    stop = int(row["stop_step"])
    target = int(1.5 * stop)
    assert row["stop_reason"] == "steady"
    # (this one absorbs on the way; a run that does not goes to the target)
    assert int(row["continued_to"]) == (int(row["absorbed_step"]) if row["absorbed"] == "True" else target)
    assert row["same_trajectory_to_stop"] == "True"
    attempts = [ln for ln in (out / "r1" / "run.log").read_text().splitlines() if ln.startswith("# ")]
    assert len(attempts) == 1 and " resume " in attempts[0] and f"--steps {target}" in attempts[0]
    assert (src / "run.h5").read_bytes() == original
    ref = cfg.replace(run=dataclasses.replace(cfg.run, steps=target, stop_when_steady=False),
                      output=dataclasses.replace(cfg.output, path=str(tmp_path / "ref.h5")))
    Simulation(ref).run().close()
    assert_same_run(tmp_path / "ref.h5", out / "r1" / "run.h5")


def finished_2d_run(run_dir, phi, seed, steps):
    """A run directory as launch/sweep leaves it (config.toml, run.h5, run.log): pairwise BRO, N = 100 in
    2d, made by `mpisim run`. Returns its run.h5."""
    run_dir.mkdir(parents=True)
    cfg = RunConfig.from_dict({
        "system": {"n": 100, "phi": phi, "dim": 2, "seed": seed},
        "dynamics": {"scheme": "bro-pairwise", "kick_size": 0.1},
        "run": {"steps": steps, "log_every": 10, "progress_seconds": 0.0},
        "output": {"path": "run.h5"}})
    (run_dir / "config.toml").write_text(cfg.to_toml())
    with open(run_dir / "run.log", "w") as log:
        assert subprocess.run([MPISIM, "run", "config.toml", "--quiet"], cwd=run_dir, stderr=log).returncode == 0
    return run_dir / "run.h5"


@pytest.mark.serial
def test_steady_continuation_in_bracket_carries_a_study_on(tmp_path):
    """launch/steady_continuation.py --in-bracket on a small study made with mpisim: the runs inside the
    absorption bracket that did not absorb (here the two at its upper end) are carried on, two at once, as
    the same trajectories; a second call finds them complete and reports the same rows, running nothing."""
    import csv
    from analysis.synthetic import write_manifest
    paths = []
    for phi in (0.3, 0.85):     # 2d: 0.3 absorbs within a few hundred steps, 0.85 never
        for seed in (1, 2):
            d = tmp_path / "runs" / f"n=100_phi={phi}_seed={seed}"
            paths.append(finished_2d_run(d, phi, seed, 400))
    manifest = write_manifest(tmp_path / "runs" / "manifest.tsv", paths)
    originals = [p.read_bytes() for p in paths]
    script = Path(__file__).parents[1] / "launch" / "steady_continuation.py"
    out = tmp_path / "cont"

    def carry_on():
        proc = subprocess.run([sys.executable, str(script), str(out), "--in-bracket", str(manifest), "--factor", "2",
                               "--max-steps", "1000", "--jobs", "2", "--mpisim", MPISIM, "-o", str(tmp_path / "t.csv")],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert "# bracket [0.3, 0.85]" in proc.stdout
        return list(csv.DictReader(open(tmp_path / "t.csv")))

    rows = carry_on()
    assert sorted(r["run"] for r in rows) == ["n=100_phi=0.85_seed=1", "n=100_phi=0.85_seed=2"]
    for r in rows:
        assert (r["stop_step"], r["continued_to"], r["absorbed"]) == ("400", "800", "False")
        assert r["same_trajectory_to_stop"] == "True" and float(r["cpu_children_s"]) > 0
    again = carry_on()
    assert [{k: v for k, v in r.items() if k != "cpu_children_s"} for r in again] == \
        [{k: v for k, v in r.items() if k != "cpu_children_s"} for r in rows]
    assert all(r["cpu_children_s"] == "nan" for r in again)
    assert [p.read_bytes() for p in paths] == originals


def assert_stops_on_sigterm(cmd, ready, settle):
    """Start launch/steady_continuation.py (``cmd``) in a session of its own, so that a signal reaches the
    script only and the script passes it on; once ``ready()`` and ``settle`` seconds more, SIGTERM to it: it
    says it was stopped, reports nothing failed and exits with 128 + 15."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.time() + 60
        while not ready():
            assert time.time() < deadline and proc.poll() is None
            time.sleep(0.1)
        time.sleep(settle)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:                # nothing left running when the test fails
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "stopped by SIGTERM" in stderr and "failed" not in stderr


@pytest.mark.serial
def test_steady_continuation_stops_on_sigterm_and_resumes(tmp_path):
    """SIGTERM to launch/steady_continuation.py alone (not its children): the running continuation is
    sent SIGTERM and checkpoints, none starts after it, the script exits with 128 + 15 saying so; the
    same command resumes the continuation from its checkpoint."""
    src = tmp_path / "runs" / "r1"
    finished_2d_run(src, 0.85, 1, 200)      # 2d phi = 0.85: never absorbs
    script = Path(__file__).parents[1] / "launch" / "steady_continuation.py"
    out = tmp_path / "cont"
    cmd = [sys.executable, str(script), str(out), str(src), "--factor", "1", "--min-steps", "100000000",
           "--max-steps", "100000000", "--mpisim", MPISIM, "-o", str(tmp_path / "t.csv")]

    log = out / "r1" / "run.log"

    def attempts():
        return [ln for ln in log.read_text().splitlines() if ln.startswith("# ")] if log.exists() else []

    def start_and_stop(attempt):
        assert_stops_on_sigterm(cmd, lambda: len(attempts()) >= attempt, settle=2)

    from mpisim.io.checkpoint import read_checkpoint_meta
    ckpt = out / "r1" / "run.h5.ckpt"
    start_and_stop(1)
    first = int(read_checkpoint_meta(ckpt)["step"])
    assert first > 200                                   # carried on past the original, then stopped
    assert not (tmp_path / "t.csv").exists()             # no continuation finished
    start_and_stop(2)
    assert len(attempts()) == 2 and " resume " in attempts()[1]
    assert int(read_checkpoint_meta(ckpt)["step"]) > first


@pytest.mark.serial
def test_steady_continuation_counts_a_child_ended_by_sigint_as_stopped(tmp_path):
    """Ctrl-C in a terminal reaches the continuations as well as the script: one may end with 128 + SIGINT
    before the script's SIGTERM lands. That is a stop after a checkpoint, not a failure. Here a stand-in
    for mpisim ends with 130 on the script's SIGTERM (deterministic; the real one's order is a race)."""
    src = tmp_path / "runs" / "r1"
    finished_2d_run(src, 0.85, 1, 200)
    stand_in = tmp_path / "mpisim"
    stand_in.write_text("#!/bin/sh\ntrap 'exit 130' TERM\nwhile :; do sleep 0.05; done\n")
    stand_in.chmod(0o755)
    script = Path(__file__).parents[1] / "launch" / "steady_continuation.py"
    log = tmp_path / "cont" / "r1" / "run.log"
    assert_stops_on_sigterm([sys.executable, str(script), str(tmp_path / "cont"), str(src), "--factor", "10",
                             "--mpisim", str(stand_in)],
                            lambda: log.exists() and log.read_text().startswith("# "), settle=1)
