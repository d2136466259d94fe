"""What ``Simulation.run()`` does at which step: operations gated by triggers (HOOMD-blue's model).

A **trigger** is a value that answers ``trigger(step) -> bool``; triggers compose with ``|``, ``&`` and
``~``. An **operation** has a trigger and an ``act(sim)``; ``run()`` is one loop that, at every step,
asks each operation's trigger once (in list order, on every rank) and lets the due ones act. The
configuration builds the default list (``from_config``); a notebook can append its own::

    from mpisim.operations import Callback, Periodic
    sim.operations.append(Callback(Periodic(100), lambda sim: print(sim.step, sim.measure()["activity"])))
    sim.add(lambda sim: ..., Periodic(100))                 # the same, shorter

Every operation runs on every rank at the same steps; values read from ``sim`` (``sim.observables``,
``sim.measure()``, ``sim.step``) are global. A decision that could differ between ranks (wall time) is
taken on rank 0 and broadcast (``WallClock``); it must sit where every rank asks it at the same steps,
which the loop guarantees for triggers. See docs/architecture.md, "How to add an operation".
"""
import bisect
import math
import sys
import time

import numpy as np

from .core.progress import hms as _hms
from .core.progress import in_notebook as _in_notebook
from .parallel.comm import on_root

__all__ = ["Trigger", "Periodic", "LogSpaced", "At", "WallClock", "Or", "And", "Not", "Always", "Never",
           "Operation", "Callback", "Checkpoint", "StructureFactor", "Log", "AbsorbedStop",
           "SteadyStop", "Snapshot", "Flush", "Progress", "from_config"]


# ------------------------------------------------------------------------------------------- triggers
NEVER = 2 ** 62     # Trigger.next_step of a trigger that is never true again


class Trigger:
    """``trigger(step) -> bool``. Subclasses define ``__call__``; ``start(comm)`` is called when a run()
    starts (binds the communicator of rank-0 decisions, restarts clocks). ``next_step(step)`` is the first
    step >= step at which the trigger may be true: run() does not ask it before (between events a step
    asks no trigger); the default, ``step``, asks at every step."""

    def __call__(self, step):
        raise NotImplementedError

    def start(self, comm):
        pass

    def next_step(self, step):
        """The first step >= ``step`` at which this trigger may answer True (NEVER if none): asking it at
        the steps before would answer False and change nothing (no clock read, no broadcast)."""
        return step

    def __or__(self, other):
        return Or(self, other)

    def __and__(self, other):
        return And(self, other)

    def __invert__(self):
        return Not(self)


class Periodic(Trigger):
    """Steps phase, phase + period, phase + 2 period, ..."""

    def __init__(self, period, phase=0):
        if not isinstance(period, (int, np.integer)) or period < 1:
            raise ValueError(f"Periodic: period must be an integer >= 1, got {period!r}")
        self.period, self.phase = int(period), int(phase)

    def __call__(self, step):
        return (step - self.phase) % self.period == 0 and step >= self.phase

    def next_step(self, step):
        if step <= self.phase:
            return self.phase
        return step + (self.phase - step) % self.period

    def __repr__(self):
        return f"Periodic({self.period}, phase={self.phase})"


class LogSpaced(Trigger):
    """Steps round(10^(j / per_decade)) for j = 0, 1, 2, ... (1, then ``per_decade`` per decade)."""

    def __init__(self, per_decade):
        if not isinstance(per_decade, (int, np.integer)) or per_decade < 1:
            raise ValueError(f"LogSpaced: per_decade must be an integer >= 1, got {per_decade!r}")
        self.per_decade = int(per_decade)
        self._steps, self._upto, self._j = set(), 0, 0    # the steps <= _upto, grown on demand

    def __call__(self, step):
        while step > self._upto:
            s = int(round(10 ** (self._j / self.per_decade)))
            self._steps.add(s)
            self._upto = s
            self._j += 1
        return step in self._steps

    def next_step(self, step):
        self(max(step, 1))  # generates the steps up to the first one >= step (the first is 1)
        return min(s for s in self._steps if s >= step)

    def __repr__(self):
        return f"LogSpaced({self.per_decade})"


class At(Trigger):
    """The given steps."""

    def __init__(self, steps):
        self.steps = frozenset(int(s) for s in steps)
        self._sorted = sorted(self.steps)

    def __call__(self, step):
        return step in self.steps

    def next_step(self, step):
        k = bisect.bisect_left(self._sorted, step)
        return self._sorted[k] if k < len(self._sorted) else NEVER

    def __repr__(self):
        return f"At({sorted(self.steps)})"


class WallClock(Trigger):
    """True at a step where ``seconds`` of wall time have passed (on rank 0) since the run() started or
    since it was last true. Rank 0 decides and broadcasts, so ask it only where every rank asks: as
    the right operand of ``&`` with a step trigger, e.g. ``Periodic(100) & WallClock(600)`` (one
    broadcast per 100 steps, not per step)."""

    def __init__(self, seconds, comm=None, clock=time.monotonic):
        if not seconds > 0:
            raise ValueError(f"WallClock: seconds must be > 0, got {seconds!r}")
        self.seconds, self.comm, self.clock = float(seconds), comm, clock
        self._since = clock()

    def start(self, comm):
        if self.comm is None:
            self.comm = comm
        self._since = self.clock()

    def __call__(self, step):
        if self.comm is None:
            raise RuntimeError("WallClock: no communicator (pass comm=, or run it inside Simulation.run)")
        due = bool(on_root(self.comm, lambda: self.clock() - self._since >= self.seconds))
        if due:
            self._since = self.clock()
        return due

    def __repr__(self):
        return f"WallClock({self.seconds})"


class Or(Trigger):
    """True if any operand is, asked left to right until one is (so a step trigger on the left keeps a
    WallClock on the right from being asked: the same steps on every rank)."""

    def __init__(self, *triggers):
        self.triggers = triggers

    def __call__(self, step):
        for t in self.triggers:
            if t(step):
                return True
        return False

    def start(self, comm):
        for t in self.triggers:
            t.start(comm)

    def next_step(self, step):
        return min(t.next_step(step) for t in self.triggers)

    def __repr__(self):
        return " | ".join(map(repr, self.triggers))


class And(Or):
    """True if every operand is, asked left to right until one is not."""

    def __call__(self, step):
        for t in self.triggers:
            if not t(step):
                return False
        return True

    def next_step(self, step):
        # true only where every operand is: not before any operand's first step (e.g. Periodic(100) &
        # WallClock(600): the periodic steps; the clock is asked only there, as __call__ asks it)
        return max(t.next_step(step) for t in self.triggers)

    def __repr__(self):
        return " & ".join(map(repr, self.triggers))


class Not(Trigger):
    def __init__(self, trigger):
        self.trigger = trigger

    def __call__(self, step):
        return not self.trigger(step)

    def start(self, comm):
        self.trigger.start(comm)


class Always(Trigger):
    """Every step."""

    def __call__(self, step):
        return True

    def __repr__(self):
        return "Always()"


class Never(Trigger):
    """No step: for an operation that acts on a condition of its own (``AbsorbedStop``)."""

    def __call__(self, step):
        return False

    def next_step(self, step):
        return NEVER

    def __repr__(self):
        return "Never()"


# ----------------------------------------------------------------------------------------- operations
class Operation:
    """An action of run() at the steps its trigger selects.

    The loop, at step k (after ``start`` once per run() call):
      1. asks every operation's trigger once, in list order;
      2. operations with ``before_pass`` act (the state x_k before its pair pass: checkpoints);
      3. the pair pass (energy summed if any operation's ``needs_energy``), the absorbing check;
      4. the other operations act, in list order; any may call ``sim.stop(reason)``;
      5. the run() call ends (at its last step, or when stopped), or the step is applied: k -> k + 1.
    ``finish`` is called once when the run() call ends. ``wanted(sim, due)`` adds an operation's own
    conditions to its trigger's answer ``due``; it must give the same answer on every rank. At a step
    where no trigger may be due (``Trigger.next_step``) run() asks ``wanted(sim, False)`` only of the
    operations that are not ``only_when_due``.
    """
    before_pass = False
    needs_absorption = False     # the absorbing check must run every step (not only until absorbed)
    # wanted() is False wherever the trigger is not due (True: ``wanted(sim, False)`` is never asked);
    # None: True for an operation that keeps Operation.wanted, else False
    only_when_due = None

    def acts_only_when_due(self):
        """Whether ``wanted(sim, False)`` is False whatever the state (``only_when_due``)."""
        own = self.only_when_due
        return type(self).wanted is Operation.wanted if own is None else bool(own)

    def __init__(self, trigger):
        self.trigger = trigger if isinstance(trigger, Trigger) else Periodic(trigger)

    def start(self, sim):
        self.trigger.start(sim.comm)

    def wanted(self, sim, due):
        return due

    def needs_energy(self, sim, due):
        return False

    def act(self, sim):
        raise NotImplementedError

    def finish(self, sim):
        pass

    def __repr__(self):
        return f"{type(self).__name__}({self.trigger!r})"


class Callback(Operation):
    """``fn(sim)`` at the steps of ``trigger``, on every rank (after the pair pass of step k, before the
    step is applied; ``sim.measure()`` gives that step's observables, ``sim.stop(reason)`` ends the run)."""

    def __init__(self, trigger, fn):
        super().__init__(trigger)
        self.fn = fn

    def needs_energy(self, sim, due):
        return due       # so that sim.measure() in fn has the step's energy and pair count

    def act(self, sim):
        self.fn(sim)

    def __repr__(self):
        return f"Callback({self.trigger!r}, {getattr(self.fn, '__name__', self.fn)!r})"


class Checkpoint(Operation):
    """OUT.h5.ckpt of the state x_k (``sim.checkpoint()``), never at the first or last step of a
    run() call (the first is where it came from, the last ends the run anyway)."""
    before_pass = True
    only_when_due = True

    def wanted(self, sim, due):
        return due and sim.writer is not None and sim.run_start < sim.step < sim.run_end

    def act(self, sim):
        sim.checkpoint()


class StructureFactor(Operation):
    """S(k) of the positions (``sim.measure_structure_factor()``; docs/structure-factor.md)."""

    def act(self, sim):
        sim.measure_structure_factor()


class Log(Operation):
    """A row of observables (``sim.measure()``) at the trigger's steps, at the last step of every run()
    call and at the step the run was first found absorbed."""

    def needs_energy(self, sim, due):
        return due or sim.step >= sim.run_end

    def wanted(self, sim, due):
        return due or sim.step >= sim.run_end or sim.absorbed_step == sim.step

    def act(self, sim):
        sim.record(sim.measure())


class AbsorbedStop(Operation):
    """End the run at the first step with no active and no moving particle."""
    needs_absorption = True

    def __init__(self):
        super().__init__(Never())      # (wanted: the absorbing check's answer, at any step)

    def wanted(self, sim, due):
        return sim.absorbed_now

    def act(self, sim):
        sim.stop("absorbed")


class SteadyStop(Operation):
    """End the run when its activity is steady by ``mpisim.core.steady.is_steady`` (block means of
    f_a over the last ``tail_fraction`` of the run flat within their errors; an absorbed series is
    steady), asked at the trigger's steps from ``min_steps`` on. The series is the recorded one
    (global: the same decision on every rank), restricted to the logging grid ``log_every`` so that
    runs made in pieces decide like one run. ``sim.steady`` holds the last verdict's details."""

    def __init__(self, trigger, log_every, min_steps=0, **criterion):
        super().__init__(trigger)
        self.log_every, self.min_steps, self.criterion = int(log_every), int(min_steps), criterion

    only_when_due = True

    def wanted(self, sim, due):
        return due and sim.step >= self.min_steps

    def act(self, sim):
        from .core.steady import is_steady
        steps = np.asarray(sim.history["step"], dtype=np.int64)
        activity = np.asarray(sim.history["activity"], dtype=np.float64)
        on_grid = steps % self.log_every == 0
        if not on_grid.any():
            return
        ok, details = is_steady(activity[on_grid], steps[on_grid], **self.criterion)
        sim.steady = dict(details, step=int(sim.step), steady=bool(ok))
        if ok:
            sim.stop("steady")


class Snapshot(Operation):
    """A frame of positions and images at the trigger's steps, and at the end of a complete run (its
    last step ``run.steps``, or where it stopped: absorbed, steady); a run() call that ends before
    the run is complete writes only the scheduled frames, so a run made in pieces has one run's frames."""
    only_when_due = True

    def wanted(self, sim, due):
        return due and sim.writer is not None

    def act(self, sim):
        sim.write_snapshot()

    def finish(self, sim):
        if sim.writer is not None and sim.run_complete:
            sim.write_snapshot()


class Flush(Operation):
    """Recorded rows to the file and the file flushed, at the trigger's steps and at the end of every
    run() call."""
    only_when_due = True

    def wanted(self, sim, due):
        return due and sim.writer is not None and len(sim.log.rows) > 0

    def act(self, sim):
        sim.flush()

    def finish(self, sim):
        if self.wanted(sim, True):
            self.act(sim)


class Progress(Operation):
    """Progress on rank 0: a line on stderr every ``seconds`` (terminals, logs), or a tqdm bar in a
    Jupyter notebook (``style="auto"``; tqdm is optional: ``pip install tqdm``).

    The first step of a run() call (start-up and numba's compilation or cache loading of the
    kernels) is timed apart: steps/s and the ETA count only the steps after it, and its time is
    reported on its own line. ``clock`` and ``out`` are for tests."""

    def __init__(self, seconds=10.0, style="auto", out=None, clock=time.perf_counter):
        super().__init__(Always())
        if style not in ("auto", "lines", "tqdm"):
            raise ValueError(f"Progress: style must be 'auto', 'lines' or 'tqdm', got {style!r}")
        self.seconds, self.style, self.out, self.clock = float(seconds), style, out, clock

    def start(self, sim):
        super().start(sim)
        self.on = sim.comm.rank == 0
        self.end, self.step0 = sim.run_end, sim.step
        self.t0 = self.t_last = self.clock() if self.on else 0.0
        self.t1 = self.step1 = None          # when the first step was done, and its step
        self.startup = None                   # seconds to the end of the first step
        self.bar = None
        self.tqdm = self.style == "tqdm" or self.style == "auto" and _in_notebook()

    def _stream(self):
        return self.out if self.out is not None else sys.stderr

    def _emit(self, text):
        print(text, file=self._stream(), flush=True)

    def act(self, sim):
        if not self.on:
            return
        now = self.clock()
        if self.t1 is None:
            if sim.step == self.step0:
                return
            self.t1, self.step1, self.t_last = now, sim.step, now
            self.startup = now - self.t0
            if self.tqdm and self._open_bar():
                return
            if self.startup >= self.seconds:
                self._emit(f"mpisim: first step took {self.startup:.1f} s (start-up and kernel compilation; "
                           f"not counted in steps/s and ETA)")
            return
        if self.bar is not None:
            self.bar.update(sim.step - self.step1 - self.bar.n)
            self.bar.set_postfix_str(f"first step {self.startup:.1f} s, {self._activity(sim)}", refresh=False)
            return
        if now - self.t_last < self.seconds:
            return
        self.t_last = now
        self._emit(self.line(sim, now))

    def rate(self, step, now):
        """Steps per second after the first step (nan before two steps are done)."""
        if self.t1 is None or step <= self.step1 or now <= self.t1:
            return math.nan
        return (step - self.step1) / (now - self.t1)

    def line(self, sim, now):
        rate = self.rate(sim.step, now)
        eta = (self.end - sim.step) / rate if rate > 0 else math.nan
        return (f"step {sim.step:>10d}/{self.end}  {rate:9.1f} steps/s  {self._activity(sim)}  "
                f"ETA {_hms(eta)}")

    @staticmethod
    def _activity(sim):
        act = sim.history["activity"][-1] if sim.history["activity"] else float("nan")
        return f"activity {act:.5f}"

    def finish(self, sim):
        if not self.on:
            return
        now = self.clock()
        if self.bar is not None:
            self.bar.update(sim.step - self.step1 - self.bar.n)
            self.bar.close()
            self.bar = None
        done = sim.step - self.step0
        first = f"first step {self.startup:.1f} s" if self.startup is not None else "no step"
        rate = self.rate(sim.step, now)
        after = f", then {rate:.1f} steps/s" if math.isfinite(rate) else ""
        self._emit(f"step {sim.step:>10d}/{self.end}  done: {done} steps in {now - self.t0:.1f} s "
                   f"({first}{after})  {self._activity(sim)}")

    def _open_bar(self):
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return False
        self.bar = tqdm(total=max(self.end - self.step1, 0), unit="step", file=self.out,
                        desc=f"steps {self.step1}..{self.end}",
                        postfix=f"first step {self.startup:.1f} s")
        return True




# ------------------------------------------------------------------------------------- from a config
def snapshot_trigger(output):
    """Frames of [output]: step 0, every ``snapshot_every``, ``snapshot_per_decade`` log-spaced, the
    explicit ``snapshot_steps`` (the end of a complete run is added by ``Snapshot``)."""
    parts = [At([0])]
    if output.snapshot_every:
        parts.append(Periodic(output.snapshot_every))
    if output.snapshot_per_decade:
        parts.append(LogSpaced(output.snapshot_per_decade))
    if output.snapshot_steps:
        parts.append(At(output.snapshot_steps))
    return parts[0] if len(parts) == 1 else Or(*parts)


def from_config(config):
    """The default operations of a RunConfig, in the order run() applies them."""
    run, sf = config.run, config.structure_factor
    ops = []
    ckpt = []
    if run.checkpoint_every:
        ckpt.append(Periodic(run.checkpoint_every))
    if run.checkpoint_minutes > 0:
        # wall time differs between ranks: rank 0 decides, asked on logged steps only
        ckpt.append(Periodic(run.log_every) & WallClock(60.0 * run.checkpoint_minutes))
    if ckpt:
        ops.append(Checkpoint(ckpt[0] if len(ckpt) == 1 else Or(*ckpt)))
    if sf.every or sf.steps:
        ops.append(StructureFactor(Or(*([Periodic(sf.every)] if sf.every else []),
                                      *([At(sf.steps)] if sf.steps else []))))
    ops.append(Log(Periodic(run.log_every)))
    if run.stop_when_absorbed:
        ops.append(AbsorbedStop())
    if run.stop_when_steady:
        ops.append(SteadyStop(Periodic(run.steady_every), run.log_every, min_steps=run.steady_min_steps,
                              tail_fraction=run.steady_tail_fraction, n_blocks=run.steady_blocks,
                              n_sub=run.steady_sub_blocks, n_sigma=run.steady_n_sigma))
    ops.append(Snapshot(snapshot_trigger(config.output)))
    ops.append(Flush(Periodic(config.output.flush_every)))
    if run.progress_seconds > 0:
        ops.append(Progress(run.progress_seconds))
    return ops
