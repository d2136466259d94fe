"""Operations and triggers (mpisim/operations.py): the triggers' steps, a notebook's callback, runs made
in pieces, the progress report's arithmetic, run until steady."""
import dataclasses
import io
import types

import h5py
import numpy as np
import pytest

from mpisim import RunConfig, Simulation
from mpisim.config import ConfigError
from mpisim.operations import (NEVER, Always, At, Callback, LogSpaced, Never, Operation, Periodic, Progress, Trigger,
                               WallClock, from_config)
from mpisim.parallel.comm import SerialComm


def test_triggers_select_their_steps():
    steps = range(0, 200)
    assert [k for k in steps if Periodic(25)(k)] == [0, 25, 50, 75, 100, 125, 150, 175]
    assert [k for k in steps if Periodic(50, phase=10)(k)] == [10, 60, 110, 160]
    # the log schedule of output.snapshot_per_decade, computed directly
    expect = sorted({int(round(10 ** (j / 3))) for j in range(20)} & set(steps))
    assert [k for k in steps if LogSpaced(3)(k)] == expect
    assert [k for k in steps if At([3, 44, 500])(k)] == [3, 44]
    both = Periodic(10) & ~At([20])
    assert [k for k in range(50) if both(k)] == [0, 10, 30, 40]
    either = At([3]) | Periodic(20)
    assert [k for k in range(50) if either(k)] == [0, 3, 20, 40]
    assert all(Always()(k) for k in steps)


@pytest.mark.parametrize("make", [lambda: Periodic(25), lambda: Periodic(50, phase=10), lambda: LogSpaced(3),
                                  lambda: At([3, 44, 500]), lambda: Periodic(10) & ~At([20]),
                                  lambda: At([3]) | Periodic(20), lambda: Periodic(7) & At([14, 15, 21, 99]),
                                  lambda: Always(), lambda: Never()])
def test_next_step_is_where_the_trigger_may_first_be_true(make):
    """run() asks no trigger before its next_step (between events): it must never skip a step the
    trigger selects; for the step triggers it is exactly the next selected step."""
    t, ref = make(), make()
    selected = [k for k in range(2000) if ref(k)]
    for k in range(600):
        nxt = t.next_step(k)
        assert nxt >= k
        assert not any(k <= s < nxt for s in selected), (k, nxt)
        if isinstance(t, (Periodic, At, LogSpaced)):
            assert nxt == next((s for s in selected if s >= k), NEVER)
    assert Never().next_step(5) == NEVER and not any(Never()(k) for k in range(50))
    assert WallClock(1.0).next_step(17) == 17        # unknown: asked at every step it is reached


class _Counting(Trigger):
    """Periodic(period), counting the steps it is asked at."""

    def __init__(self, period):
        self.period, self.asked = period, []

    def __call__(self, step):
        self.asked.append(step)
        return step % self.period == 0

    def next_step(self, step):
        return step + (-step) % self.period


class _OnCondition(Operation):
    """An operation with a condition of its own (not only_when_due): asked at every step, acts at 13."""

    def __init__(self):
        super().__init__(Never())
        self.asked, self.acted = [], []

    def wanted(self, sim, due):
        self.asked.append(sim.step)
        return sim.step == 13

    def act(self, sim):
        self.acted.append(sim.step)


def test_between_events_no_trigger_is_asked_but_conditions_are(tmp_path):
    """The run loop asks the triggers only at steps where one may be due (Trigger.next_step), yet an
    operation whose wanted() has conditions of its own is asked at every step and acts where they hold;
    the default operations' rows and frames are those of the step-by-step loop (Log at every log_every,
    snapshots at their steps, the last step)."""
    sim = Simulation(config(), output=str(tmp_path / "o.h5"))
    counting = _Counting(10)
    seen = []
    sim.operations.append(Callback(counting, lambda s: seen.append(s.step)))
    cond = _OnCondition()
    sim.operations.append(cond)
    assert not cond.acts_only_when_due() and Callback(Periodic(3), print).acts_only_when_due()
    sim.run()
    assert seen == list(range(0, 61, 10))
    # asked at its own steps (and where another trigger was due: Log every 5, the snapshots at 7, 20, ...)
    assert set(counting.asked) <= set(range(0, 61, 5)) | {7} and set(seen) <= set(counting.asked)
    assert cond.asked == list(range(61)) and cond.acted == [13]
    assert list(sim.observables["step"]) == list(range(0, 61, 5))
    with h5py.File(tmp_path / "o.h5", "r") as f:
        from mpisim.io import format as fmt
        assert list(fmt.frame_steps(f)) == [0, 7, 20, 40, 60]


def test_wall_clock_is_decided_on_rank_0_and_restarts_when_true():
    now = [0.0]
    t = WallClock(10.0, comm=SerialComm(), clock=lambda: now[0])
    t.start(SerialComm())
    now[0] = 9.0
    assert not t(1)
    now[0] = 10.0
    assert t(2)
    now[0] = 15.0
    assert not t(3)       # 5 s since it was last true
    now[0] = 20.5
    assert t(4)


@pytest.mark.parametrize("bad", [lambda: Periodic(0), lambda: LogSpaced(0), lambda: WallClock(0),
                                 lambda: Progress(style="fancy")])
def test_bad_trigger_parameters_are_refused(bad):
    with pytest.raises(ValueError):
        bad()


def config(**run):
    r = {"steps": 60, "log_every": 5, "progress_seconds": 0.0, "stop_when_absorbed": False}
    r.update(run)
    return RunConfig.from_dict({"system": {"n": 200, "phi": 0.7, "dim": 2, "seed": 3},
                                "dynamics": {"scheme": "sgd", "learning_rate": 0.1, "batch_fraction": 0.5},
                                "run": r, "output": {"snapshot_every": 20, "snapshot_steps": [7]}})


def test_the_config_builds_the_default_operations():
    kinds = [type(op).__name__ for op in from_config(config(checkpoint_every=10, progress_seconds=1.0,
                                                            stop_when_absorbed=True, stop_when_steady=True))]
    assert kinds == ["Checkpoint", "Log", "AbsorbedStop", "SteadyStop", "Snapshot", "Flush", "Progress"]
    assert [type(op).__name__ for op in from_config(config())] == ["Log", "Snapshot", "Flush"]


def test_a_callback_runs_at_its_steps_and_can_stop_the_run(tmp_path):
    sim = Simulation(config(), output=str(tmp_path / "o.h5"))
    seen = []
    sim.operations.append(Callback(Periodic(10), lambda s: seen.append((s.step, s.measure()))))
    op = sim.add(lambda s: s.stop("enough") if s.step == 33 else None, Always())
    sim.run()
    assert [k for k, _ in seen] == [0, 10, 20, 30]
    # the callback sees the step's observables (energy included): those logged at the same steps
    rows = {k: i for i, k in enumerate(sim.observables["step"])}
    for k, values in seen:
        for name in ("activity", "energy", "active_pairs"):
            assert values[name] == sim.observables[name][rows[k]], (k, name)
    assert seen[-1][1]["energy"] > 0
    assert sim.step == 33 and sim.stop_reason == "enough" and sim.run_complete
    with h5py.File(tmp_path / "o.h5") as f:
        assert list(f["particles/all/position/step"][:]) == [0, 7, 20, 33]   # the stopped run's last frame
        assert f["parameters/provenance"].attrs["stopped"] == "enough"
    n = len(sim.observables["step"])
    sim.run(steps=10)                      # a stopped run is over
    assert sim.step == 33 and len(sim.observables["step"]) == n
    sim.operations.remove(op)


def test_a_callback_off_the_logging_grid_sees_the_energy():
    cfg = config()
    every = Simulation(cfg.replace(run=dataclasses.replace(cfg.run, log_every=1)), write=False).run(steps=12)
    sim = Simulation(cfg, write=False)
    seen = {}
    sim.add(lambda s: seen.__setitem__(s.step, s.measure()["energy"]), At([3, 11]))
    sim.run(steps=12)
    energy = dict(zip(every.observables["step"], every.observables["energy"]))
    assert seen == {3: energy[3], 11: energy[11]} and seen[3] > 0


@pytest.mark.parametrize("pieces", [(7, 13, 40), (20, 20, 20), (1, 58, 1)])
def test_a_run_in_pieces_writes_the_frames_of_one_run(tmp_path, pieces):
    """run(steps=...) several times writes frames only where the schedule says (and at the end)."""
    Simulation(config(), output=str(tmp_path / "whole.h5")).run()
    sim = Simulation(config(), output=str(tmp_path / "pieces.h5"))
    for steps in pieces:
        sim.run(steps=steps)
    with h5py.File(tmp_path / "whole.h5") as a, h5py.File(tmp_path / "pieces.h5") as b:
        assert list(a["particles/all/position/step"][:]) == [0, 7, 20, 40, 60]
        for name in ("position/step", "position/value", "image/value"):
            np.testing.assert_array_equal(a[f"particles/all/{name}"][:], b[f"particles/all/{name}"][:],
                                          err_msg=name)


def fake_sim(step=0, end=100, rank=0):
    return types.SimpleNamespace(step=step, run_end=end, comm=types.SimpleNamespace(rank=rank),
                                 history={"activity": [0.5]})


def drive(progress, sim, times):
    """Run a Progress through a run() call: times[i] is the clock when step i is done (times[0]: start)."""
    clock = iter(times)
    progress.clock = lambda: next(clock)
    progress.start(sim)
    for k in range(1, len(times) - 1):
        sim.step = k
        progress.act(sim)
    progress.finish(sim)


def test_progress_reports_the_first_step_apart_from_the_rate():
    """The first step (numba compilation) took 100 s, each later step 0.5 s: steps/s and the ETA count
    the later steps only, and the first step's time is reported on its own."""
    out = io.StringIO()
    p = Progress(seconds=2.0, style="lines", out=out)
    sim = fake_sim(end=100)
    drive(p, sim, [0.0] + [100.0 + 0.5 * k for k in range(99)] + [150.0])
    lines = out.getvalue().splitlines()
    assert "first step took 100.0 s" in lines[0] and "compilation" in lines[0]
    rates = [float(line.split()[2]) for line in lines[1:-1]]
    assert len(rates) == 24 and all(r == 2.0 for r in rates)
    # at step 5 (the first line, 2 s after the first step): 95 steps left at 2 steps/s
    assert lines[1].split()[1] == "5/100" and lines[1].endswith("ETA 0:00:47")
    assert "done: 99 steps in 150.0 s" in lines[-1] and "first step 100.0 s" in lines[-1]


def test_progress_eta_excludes_the_first_step():
    out = io.StringIO()
    p = Progress(seconds=5.0, style="lines", out=out)
    sim = fake_sim(end=10000)
    # first step 60 s, then 1 s per step
    drive(p, sim, [0.0] + [60.0 + k for k in range(12)] + [72.0])
    eta = [line for line in out.getvalue().splitlines() if line.startswith("step")][0]
    # at step 6: 5 steps in 5 s after the first, 9994 steps left at 1 step/s = 2:46:34 (counting the
    # first step, 6 steps in 65 s, it would be 30:05:18)
    assert eta.split()[1] == "6/10000" and eta.endswith("ETA 2:46:34")


def test_progress_is_silent_on_other_ranks():
    out = io.StringIO()
    drive(Progress(seconds=0.0, style="lines", out=out), fake_sim(rank=1), [0.0, 1.0, 2.0, 3.0, 4.0])
    assert out.getvalue() == ""


def test_progress_bar_starts_after_the_first_step():
    pytest.importorskip("tqdm")
    out = io.StringIO()
    p = Progress(seconds=1.0, style="tqdm", out=out)
    drive(p, fake_sim(end=50), [0.0] + [30.0 + k for k in range(50)] + [80.0])
    text = out.getvalue()
    assert "first step 30.0 s" in text and "| 0/49 " in text and "| 49/49 " in text
    assert "done: 50 steps" in text.splitlines()[-1]


# ------------------------------------------------------------------------------------- run until steady
def steady_config(**run):
    r = {"steps": 20000, "log_every": 10, "progress_seconds": 0.0, "stop_when_absorbed": True,
         "stop_when_steady": True, "steady_every": 500}
    r.update(run)
    return RunConfig.from_dict({"system": {"n": 300, "phi": 0.78, "dim": 2, "seed": 2},
                                "dynamics": {"scheme": "bro-pairwise", "kick_size": 0.1}, "run": r})


def test_a_run_stops_once_steady():
    """Above phi_c the activity relaxes (0.96 -> 0.3 in 500 steps), then fluctuates: the run stops at
    the first check whose verdict on the recorded series is "steady", long before run.steps."""
    from mpisim.core.steady import is_steady
    sim = Simulation(steady_config(), write=False).run()
    assert sim.stop_reason == "steady" and sim.absorbed_step == -1
    assert sim.step % 500 == 0 and 500 < sim.step < 20000
    assert sim.steady["steady"] and sim.steady["step"] == sim.step
    obs = sim.observables
    assert is_steady(obs["activity"], obs["step"])[0]
    # every earlier check said "not yet"
    for k in range(0, sim.step, 500):
        keep = obs["step"] <= k
        assert not is_steady(obs["activity"][keep], obs["step"][keep])[0], k


def test_steady_stop_decides_like_one_run_in_pieces():
    whole = Simulation(steady_config(), write=False).run()
    pieces = Simulation(steady_config(), write=False)
    while not pieces.run_complete:
        pieces.run(steps=333)
    assert pieces.step == whole.step and pieces.stop_reason == "steady"


def test_min_steps_and_the_step_cap():
    first = Simulation(steady_config(), write=False).run()
    late = Simulation(steady_config(steady_min_steps=first.step + 1), write=False).run()
    # not stopped where the first run was: it went on, here until it absorbed (N = 300 near phi_c)
    assert late.step > first.step and late.stop_reason in ("steady", "absorbed")
    assert late.step == late.absorbed_step if late.stop_reason == "absorbed" else late.step % 500 == 0
    sim = Simulation(steady_config(steps=1200, steady_n_sigma=1e-9), write=False).run()
    assert sim.step == 1200 and sim.stop_reason is None and sim.steady["steady"] is False


@pytest.mark.parametrize("key,value", [("steady_every", 0), ("steady_blocks", 2), ("steady_sub_blocks", 1),
                                       ("steady_tail_fraction", 0.0), ("steady_n_sigma", -1.0)])
def test_bad_steady_keys_name_the_key(key, value):
    with pytest.raises(ConfigError, match=f"run.{key}"):
        steady_config(**{key: value})


@pytest.mark.mpi(min_size=2)
def test_decisions_are_the_same_on_every_rank():
    """Each rank's clock differs: WallClock follows rank 0's. The steady stop and a callback's stop
    happen at the same step on every rank and on one rank."""
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    now = [0.0]
    t = WallClock(10.0, comm=comm, clock=lambda: now[0])
    t.start(comm)
    now[0] = 5.0 if comm.rank == 0 else 50.0
    assert comm.allgather(t(1)) == [False] * comm.size
    now[0] = 20.0 if comm.rank == 0 else 0.0
    assert comm.allgather(t(2)) == [True] * comm.size
    one = Simulation(steady_config(), comm=MPI.COMM_SELF, write=False).run()
    many = Simulation(steady_config(), comm=comm, write=False).run()
    assert many.stop_reason == one.stop_reason == "steady" and many.step == one.step
    assert comm.allgather(many.step) == [one.step] * comm.size
