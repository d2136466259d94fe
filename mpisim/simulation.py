"""The simulation: state, decomposition, dynamics and writers composed into one run.

    sim = Simulation.from_config("run.toml", output="out.h5")   # or a dict
    sim.run()
    sim.observables["activity"]                                  # numpy arrays, global
"""
import dataclasses
import os
import signal
import time
import warnings
from pathlib import Path

import numpy as np

from .core import kernels, kernels_wide
from . import sources
from .config import ConfigError, Run, RunConfig, apply_overrides, toml_text
from .core.neighbour_list import NeighbourList
from .parallel.domain import Domain
from .parallel.comm import all_gather, id_blocks, max_floats, on_root, world
from .core.dynamics import DynamicsParams
from .core.box import storage_width, wrapped_positions
from .core.fixedpoint import SQ_SCALE, exact_value
from .core.kernels import C_ENERGY_HI, C_PAIRS, N_COUNTERS, N_DISP
from .core import steploop
from .core.observables import NAMES, ObservableLog
from .core.sparse import preview_step, supports as sparse_supported
from .core.state import ParticleState
from .core.memory import BYTES_PER_PARTICLE, machine_memory
from . import operations
from .io.errors import WriteError, writing


class NumericalError(ConfigError):
    """The run left the range where its numbers mean anything (non-finite or runaway positions, a
    fixed-point sum near overflow): parameters the dynamics cannot take. Exit status 2."""


# A fixed-point accumulator (int64, FIXED_SCALE = 2^40 per unit length) beyond this has used half its
# range: 2^62 / 2^40 = 4.2e6 diameters in one step.
ACC_LIMIT = 2 ** 62
GUARD_ADVICE = ("the dynamics is unstable at these parameters (too large a learning_rate, kick_size, "
                "noise or temperature?); the output is left unfinished, see docs/configuration.md, "
                "\"Numerical guard\"")


# run.step_kind = auto takes the sparse step while fewer than this fraction of a rank's rows were active
# at the last pass (measured: docs/performance.md).
SPARSE_BELOW = 0.05


class Simulation:
    """One run on all ranks of ``comm``. Values are global unless named rank-local."""

    # The current (or last) run() call, read by the operations (mpisim/operations.py).
    run_start = 0           # its first step
    run_end = 0             # the step at which it ends unless stopped
    stop_reason = None      # why an operation ended the run ("absorbed", "steady", ...), else None
    absorbed_now = False    # whether this step's absorbing check found no active or moving particle
    steady = None           # the last steady-state verdict (operations.SteadyStop), a dict

    def __init__(self, config, output=None, comm=None, overwrite=False, write=True, source=None):
        """source: where the particles come from (mpisim/sources.py); default the one system.init names
        (a random start or a frame of an earlier output). ``Simulation.resume`` passes a checkpoint."""
        self.config = config
        self.comm = comm if comm is not None else world()
        s = config.system
        self.dim = s.dim
        self.n_total = s.n
        self.seed = s.seed
        width = storage_width(self.dim)     # position columns: 3 for d <= 3, else d (core/box.py)
        self.dynamics = DynamicsParams(config.dynamics, dim=self.dim, width=width)
        self.output_path = output if output is not None else config.output.path
        # Where the output ends up: output_path itself, except while an --overwrite builds its new file
        # at OUT.h5.new (output_path), renamed over OUT.h5 when the run is complete (_replace_output).
        self.final_path = self.output_path
        # The sparse step (core/sparse.py; speed only, never results) for the schemes it reproduces.
        sparse = sparse_supported(self.dynamics, self.dim) and config.run.step_kind != "dense"
        self._forced_sparse = config.run.step_kind == "sparse"
        _check_memory(self.n_total, self.comm)
        self.state = ParticleState(n_aux=self.dynamics.n_aux, width=width)
        # Each rank makes (or reads) only its block of ids, then sends every particle to its owner: no
        # rank ever holds all N particles.
        blocks = id_blocks(self.n_total, self.comm.size)
        block = (int(blocks[self.comm.rank]), int(blocks[self.comm.rank + 1]))
        start = (source if source is not None else sources.from_config(config))(config, self.state.schema, block)
        cutoff = config.largest_diameter()
        try:
            self.domain = Domain(start.box, self.dim, cutoff, comm=self.comm)
        except ValueError as exc:
            raise ConfigError(f"mpirun -n {self.comm.size}: {exc}") from None
        self.box = self.domain.box
        # The pair kernels: the hand-unrolled three-column ones for d <= 3, else those compiled once per d
        # for a tuple box (core/kernels_wide.py); apply_step and the sums loop over dim axes in both.
        self._pair_kernels, self._kernel_box = ((kernels, self.box) if width == 3 else
                                                (kernels_wide, tuple(float(b) for b in self.box)))
        self.step_bound = 0.5 * float(np.min(self.box[:self.dim]))   # the numerical guard's bound
        # The skin adapts to how far particles move per step (speed only, never results).
        # Without a skin the pair pass searches the cells (no list), except for the reciprocal pair noise,
        # whose pass reads the list (docs/performance.md, "Large kicks"; speed only, never results).
        if config.run.pair_search == "cells" and self.dynamics.reciprocal_noise:
            raise ConfigError(f'run.pair_search = "cells": {config.dynamics.scheme} with reciprocal noise needs '
                              f'the Verlet list (its noise pass reads it); use "auto" or "verlet"')
        self.nlist = NeighbourList(self.box, self.dim, self.domain.lo, self.domain.width, cutoff,
                                   skin=config.run.skin, sort_every=config.run.sort_every, sparse=sparse,
                                   search=config.run.pair_search, cells_ok=not self.dynamics.reciprocal_noise,
                                   always_keep_skin=sparse and config.run.step_kind == "sparse")
        self.state.set_owned_rows(self.domain.distribute(start.rows))
        self.step = 0
        self.absorbed_step = -1
        self.counters = np.zeros(N_COUNTERS, dtype=np.int64)
        self.disp_sums = np.zeros(N_DISP, dtype=np.int64)  # rank-local exact sums of |dx|, |dx|^2 (last step)
        self.max_disp = 0.0                            # max |dx| of the last step over all ranks
        self.activity_fraction = 1.0   # global: the largest rank-local active fraction of the last step
        self.sparse_steps = 0          # pair passes taken sparse (rank-local)
        self.kind_switches = 0         # passes whose kind (dense, sparse) differs from the last (rank-local)
        self._last_sparse = False
        self._reduced = None           # (step, vote, largest step, active fraction) reduced early by run()
        self.log = ObservableLog()
        self.history = {name: [] for name in ("step",) + NAMES}
        self.writer = None
        self._write = write
        self._opened_output = False
        self._overwrite = overwrite
        self._started = None                     # the output's provenance start_time (_output_started)
        self._done_step = -1                     # step at which the last run() call ended
        self.operations = operations.from_config(config)   # what run() does when (mpisim/operations.py)
        self.interrupt_reason = None             # e.g. "SIGTERM": checkpoint and stop (stop_on_signals)
        self._interrupt_watched = False
        self.interrupted = False                 # the last run() stopped early on interrupt_reason
        self.structure_factor = []               # SofkResult of each S(k) measurement (global)
        self.sofk = None                         # StructureFactorMeasurement (mpisim/parallel/sofk.py)
        if start.clock is not None:
            self._set_clock(start.clock)
        total = int(self.domain.sum_int(np.array([self.state.n_own]))[0])
        if total != self.n_total:
            raise RuntimeError(f"start-up: {total} particles owned, expected {self.n_total}")
        sf = config.structure_factor
        if sf.every or sf.steps:
            self.sofk = self._sofk_measurement()  # bad S(k) parameters fail here, before any output

    # ------------------------------------------------------------------------------------ construction
    @classmethod
    def from_config(cls, config, output=None, overrides=(), comm=None, overwrite=False, write=True):
        """config: a RunConfig, a dict of sections, or the path of a TOML file."""
        if isinstance(config, (str, Path)):
            config = RunConfig.from_toml(config, overrides)
        elif isinstance(config, dict):
            from .config import apply_overrides
            config = RunConfig.from_dict(apply_overrides(config, overrides))
        return cls(config, output=output, comm=comm, overwrite=overwrite, write=write)

    def _radii(self, ids):
        """Radii of the particles with the given global ids (a function of the id and the seed only)."""
        return sources.particle_radii(self.config, ids)

    def set_positions(self, positions):
        """Replace the configuration (notebooks, tests): positions (N, d) in box units, global, the same
        on every rank. Images, x0 (the MSD reference) and per-particle dynamics state are reset."""
        positions = np.asarray(positions, dtype=np.float64)
        if positions.shape != (self.n_total, self.dim):
            raise ValueError(f"positions must have shape ({self.n_total}, {self.dim}), got {positions.shape}")
        pos = wrapped_positions(positions, self.box, self.dim)
        mine = np.flatnonzero(self.domain.owns(pos))
        self.state.set_owned(mine, pos[mine], np.zeros((len(mine), self.state.width), np.int32), self._radii(mine),
                             pos[mine], np.zeros((len(mine), self.state.n_aux)))
        self.nlist.invalidate()
        self._done_step = -1     # a run() from here starts with this configuration's pass

    # --------------------------------------------------------------------------------------------- step
    def compute(self, energy=True):
        """Refresh ghosts (or rebuild the pair list) and run the pair pass at the current positions.
        energy=False skips the energy and pair counts (only needed on logged steps)."""
        st, dyn, nl = self.state, self.dynamics, self.nlist
        self._reduced = None     # the step's reduction, if run() takes it before the move (_reduce_early)
        rebuilt = nl.update(st, self.step, self.domain, self.max_disp)
        n = st.n_own + st.n_ghost
        self.counters[:] = 0
        pairs = nl.pairs
        sparse = nl.sparse_valid and nl.sparse.listed and self._wants_sparse()
        self.kind_switches += sparse != self._last_sparse
        self._last_sparse = sparse
        if sparse:
            nl.sparse_index(n).pair_pass(dyn.scheme, dyn.params, dyn.potential, self.seed, self.step, st.pos,
                                         st.ids, st.radius, st.n_own, self.box, pairs.first, pairs.second,
                                         st.acc, st.active, self.counters, energy)
            self.sparse_steps += 1
        else:
            pairs = nl.dense_pairs()        # the sparse index may hold its first array
            st.active[:n] = 0
            if not rebuilt:         # (a build leaves acc zero)
                st.acc[:n] = 0      # the ghost rows still hold the last pass's share of their pairs
            if nl.cell_pass:
                nl.cell_pair_pass(dyn.scheme, dyn.params, dyn.potential, self.seed, self.step, st, self.box,
                                  self.counters, energy)
            else:
                self._pair_kernels.pair_pass(dyn.scheme, dyn.params, dyn.potential, self.seed, self.step,
                                             st.pos, st.ids, st.radius, st.n_own, self._kernel_box, pairs.first,
                                             pairs.second, pairs.n, st.acc, st.active, self.counters, energy)
            if nl.sparse is not None:
                # the next step may go sparse from this pass's active rows (listed only if it may)
                everything = self.config.run.step_kind == "sparse"
                nl.sparse.start(st.active, n, st.n_own, n if everything else SPARSE_BELOW * n)
                nl.sparse_valid = True
        if dyn.reciprocal_noise:
            # The pair noise reads both particles' memories: refresh the ghosts' copies first.
            self.domain.forward_aux(st)
            self._pair_kernels.noise_pair_pass(dyn.scheme, dyn.params, self.seed, self.step, self.dim, st.pos,
                                               st.ids, st.radius, st.active, n, self._kernel_box, pairs.first,
                                               pairs.second, pairs.n, st.aux, st.noise, st.acc)

    def _wants_sparse(self):
        """Whether this rank takes the sparse pass now (rank-local: either pass gives the same result):
        always when run.step_kind is sparse, under auto while few of its rows were active at the last pass."""
        kind = self.config.run.step_kind
        if kind == "sparse":
            return True
        st = self.state
        return kind == "auto" and self.nlist.sparse.n_active <= SPARSE_BELOW * (st.n_own + st.n_ghost)

    @property
    def rebuilds(self):
        """Number of neighbour-list rebuilds so far (the same on every rank)."""
        return self.nlist.rebuilds

    def measure(self):
        """Global observables of the current positions (after compute()); identical on all ranks."""
        st = self.state
        msd = np.zeros(2, dtype=np.int64)
        kernels.msd_sum(st.pos, st.image, st.x0, self.box, st.n_own, self.dim, msd)
        # The numerical guard rides on this reduction (no extra collective): non-finite coordinates,
        # and fixed-point accumulators within a factor 2 of the int64 range (docs/configuration.md).
        own = st.pos[:st.n_own, :self.dim]
        acc = st.acc[:st.n_own]
        guard = [np.count_nonzero(~np.isfinite(own)), np.count_nonzero((acc > ACC_LIMIT) | (acc < -ACC_LIMIT))]
        local = np.concatenate([[kernels.count_active(st.active, st.n_own)], self.counters, msd,
                                self.disp_sums, guard])
        tot = self.domain.sum_int(local)
        if tot[-2] or tot[-1]:
            raise NumericalError(f"step {self.step}: " + (
                f"{tot[-2]} position coordinate(s) are not finite" if tot[-2] else
                f"{tot[-1]} fixed-point displacement sum(s) reached 2^62 (the int64 range is 2^63): the "
                f"kicks are too large") + "; " + GUARD_ADVICE)
        tot = tot[:-2]
        n = self.n_total
        return {
            "activity": tot[0] / n,
            "active_pairs": int(tot[1 + C_PAIRS]),
            "energy": exact_value(tot[1 + C_ENERGY_HI], tot[2 + C_ENERGY_HI]),
            "msd": exact_value(tot[-6], tot[-5]) / n,
            "mean_displacement": exact_value(tot[-4], tot[-3]) / n,
            # paper 002's instantaneous speed |delta_k|^2 of the step x_{k-1} -> x_k, per particle
            "speed_squared": exact_value(tot[-2], tot[-1]) / SQ_SCALE / n,
            "max_displacement": self.max_disp,
        }

    def advance(self):
        """Apply the displacements accumulated by compute(): x_k -> x_{k+1}; step += 1."""
        st, dyn, nl = self.state, self.dynamics, self.nlist
        self.disp_sums[:] = 0
        if nl.sparse_valid and self._last_sparse:
            # Only the active rows can move (core/sparse.py); the running maximum bounds every row's travel.
            local_disp, travel = nl.sparse.apply(dyn.scheme, dyn.params, self.seed, self.step, self.dim, st.pos,
                                                 st.image, st.ids, st.n_own, self.box, st.acc, st.travel,
                                                 nl.from_build, self.disp_sums)
            nl.max_travel = max(nl.max_travel, travel)
        else:
            # (after a dense pass the sequential update is faster; either leaves the same state)
            local_disp, nl.max_travel = kernels.apply_step(dyn.scheme, dyn.params, self.seed, self.step,
                                                           self.dim, st.pos, st.image, st.ids, st.n_own,
                                                           self.box, st.acc, st.active, st.aux, st.noise,
                                                           st.travel, self.disp_sums)
        reduced, self._reduced = self._reduced, None
        if reduced is not None and reduced[0] == self.step:
            # run() reduced this step's values before the operations, from preview_step (same values)
            rebuild, self.max_disp, self.activity_fraction = reduced[1:]
        else:
            active = nl.sparse.n_active_own / max(st.n_own, 1) if nl.sparse_valid else 1.0
            # One reduction per step: the neighbour list's rebuild vote, the largest step (its skin choice
            # reads it at the next rebuild) and the largest rank-local active fraction (the skin choice).
            rebuild, self.max_disp, self.activity_fraction = self._max_floats(
                nl.travelled_too_far(nl.max_travel), local_disp, active)
        nl.stale = bool(rebuild)
        nl.few_active = nl.sparse is not None and (self._forced_sparse or self.activity_fraction < SPARSE_BELOW)
        self._guard()
        self.step += 1

    def _guard(self):
        """The numerical guard of every step, free: the largest step is reduced anyway. "not <=" also
        catches a NaN (docs/configuration.md, "Numerical guard")."""
        if not self.max_disp <= self.step_bound:
            raise NumericalError(f"step {self.step}: a particle moved {self.max_disp:.4g} in one step, more "
                                 f"than half the smallest box edge ({self.step_bound:.4g}); " + GUARD_ADVICE)

    def _cell_steps_fit(self, ops):
        """Whether run()'s steps between events may go to the compiled step loop (core/steploop.py) at all
        (fixed for a run() call): one rank, three position columns, a stateless update (no momentum, no
        reciprocal pair noise), not forced sparse, and between events only the default operations (the
        loop asks no operation: Log and AbsorbedStop act on its exits only, Callbacks only when due)."""
        dyn = self.dynamics
        quiet = [op for op in ops if not op.acts_only_when_due()]
        energy = [op for op in ops if type(op).needs_energy is not operations.Operation.needs_energy]
        return (self.comm.size == 1 and self._pair_kernels is kernels and not dyn.reciprocal_noise
                and not dyn.momentum and not self._forced_sparse and not self.domain.migrating
                and all(type(op) in (operations.Log, operations.AbsorbedStop) for op in quiet)
                and all(type(op) in (operations.Log, operations.Callback) for op in energy)
                and not any(op.before_pass for op in quiet))

    def _cell_steps_now(self):
        """Whether the steps from this one are the compiled loop's (rank-local, one rank): the last build
        chose the cell pass and the next keeps it (the skin choice: no list can last, not few active), no
        ghosts, no sort due (``NeighbourList.rebuild`` would do nothing else)."""
        nl, st = self.nlist, self.state
        return (nl.cell_pass and nl.skin == 0.0 and not nl.few_active and not 6.0 * self.max_disp < nl.max_skin
                and not nl.ghost_axes and st.n_ghost == 0 and nl.block is not None and nl.rows_per_block > 0
                and nl.last_sort is not None and self.step - nl.last_sort < nl.sort_every
                and not self._last_sparse and (nl.sparse is None or nl.sparse.n_changed == 0)
                and nl.cells.sorted_pos is not None and nl.cells.sorted_pos.shape[0] == 3)

    def _cell_steps(self, stop):
        """Steps from this one up to before ``stop`` in core/steploop.py's compiled loop, with the
        bookkeeping of compute() and advance() for the steps it made. Returns True if it stopped after the
        pass of ``self.step`` (no active particle, or few: run() finishes that step from its absorbing
        check), False if before it. The numerical guard raises as advance() does."""
        st, dyn, nl = self.state, self.dynamics, self.nlist
        c, sp, n = nl.cells, nl.sparse, st.n_own
        limit = SPARSE_BELOW * n
        status, step, builds, n_active, max_disp, max_travel, fraction, block, first, second = steploop.cell_steps(
            dyn.scheme, dyn.params, dyn.potential, self.seed, self.step, stop, self.dim, st.pos, st.image, st.ids,
            st.radius, st.shift, st.aux, st.noise, n, self.box, nl.reach, nl.max_skin, self.step_bound,
            sp is not None, limit, SPARSE_BELOW, c.origin, c.width, c.dims, c.owned_lo, c.owned_hi, c.cell_of,
            c.cell_start, c.order, c.sorted_pos, c.periodic_edges, nl.rows_per_block, nl.block.first,
            nl.block.second, st.acc, st.active, st.travel, self.counters, self.disp_sums)
        nl.rows_per_block = block
        if first.shape[0] != nl.block.first.shape[0]:       # (grown: a row's pairs did not fit)
            nl.block.first, nl.block.second = first, second
        if builds:
            nl.rebuilds += builds
            nl.cell_passes += builds
            nl.built_at = step if status != steploop.BEFORE_PASS else step - 1
            if sp is not None:
                sp.forget_index()
        self.step = step
        if builds > (status == steploop.AFTER_PASS):
            # what advance() leaves after the last update
            self.max_disp, self.activity_fraction = max_disp, fraction
            nl.few_active = sp is not None and fraction < SPARSE_BELOW
        if status == steploop.AFTER_PASS:
            # what the build and compute() leave after the pass
            nl.max_travel = 0.0
            nl.stale = False
            if sp is not None:
                sp.start(st.active, n, n, limit)
                nl.sparse_valid = True
            return True
        if builds:
            nl.max_travel = max_travel
            nl.stale = bool(nl.travelled_too_far(max_travel))
            if sp is not None:
                sp.n_active = sp.n_active_own = n_active
                sp.listed = False
                nl.sparse_valid = True
        if status == steploop.GUARD:
            self._guard()
        return False

    def _reduce_early(self, local_count):
        """The step's one reduction taken after the pass, before the operations and the move: the values
        advance() would reduce (rebuild vote, largest step, active fraction; from core.sparse.preview_step,
        which reads what the update will do) together with the absorbing check's count. Used while few
        particles are active (global ``few_active``), where the second collective would be a large part
        of a step; a dense step has a preview pass over all rows then (after a list build), so the dense
        regime keeps two. Returns whether no rank has an active (or moving) particle."""
        st, dyn, nl = self.state, self.dynamics, self.nlist
        sp = nl.sparse
        sparse = self._last_sparse
        disp, travel = preview_step(dyn.scheme, dyn.params, self.seed, self.step, self.dim, st.pos, st.image,
                                    st.ids, st.n_own, self.box, st.acc, st.active, sp.active_rows, sp.n_active,
                                    not sparse, st.travel, sp.build_pos, nl.from_build and sparse)
        if sparse:
            travel = max(nl.max_travel, travel)      # the sparse update keeps a running maximum
        rebuild, max_disp, fraction, count = self._max_floats(
            nl.travelled_too_far(travel), disp, sp.n_active_own / max(st.n_own, 1), float(local_count))
        self._reduced = (self.step, rebuild, max_disp, fraction)
        return count == 0

    def _max_floats(self, *values):
        """The element-wise maximum over ranks of float values (the step's one reduction); on one rank the
        values themselves (Python floats: the same float64 numbers), without an array or a call."""
        if self.comm.size == 1:
            return values
        return self.domain.max_floats(values)

    def _active_count(self):
        """Rank-local number of owned particles active at the last pass (from the sparse bookkeeping's
        list when it is current: no pass over all N)."""
        st, nl = self.state, self.nlist
        if nl.sparse_valid:
            return nl.sparse.n_active_own
        return kernels.count_active(st.active, st.n_own)

    def _moving(self):
        """Rank-local count of particles that move without overlapping (momentum, langevin): a run is
        absorbed only when no particle overlaps and none of these moves."""
        dyn, st = self.dynamics, self.state
        if dyn.always_moving:
            return st.n_own
        if dyn.momentum:
            return kernels.count_moving(st.aux, st.n_own, self.dim)
        return 0

    # ---------------------------------------------------------------------------------------------- run
    def run(self, steps=None):
        """Run to ``run.steps`` (or ``steps`` more), or until an operation stops it (absorbed, steady).
        Each step: the due operations of ``self.operations`` act (mpisim/operations.py). Returns self."""
        cfg = self.config
        end = cfg.run.steps if steps is None else self.step + steps
        # The last run() may have ended at this step, after its pass, records and output.
        continuing = self._done_step == self.step
        if continuing and (end <= self.step or self.stop_reason is not None):
            return self
        if self._write and self.writer is None:
            # A second run() on the same simulation appends to the file the first one wrote.
            self._reopen_writer() if self._opened_output else self._open_writer()
        if continuing:
            self.advance()       # all that step still lacks
        self.run_start, self.run_end, self.stop_reason = self.step, end, None
        ops = list(self.operations)
        for op in ops:
            op.start(self)
        triggers = [op.trigger for op in ops]
        before = [(i, op) for i, op in enumerate(ops) if op.before_pass]
        after = [(i, op) for i, op in enumerate(ops) if not op.before_pass]
        energy = [(i, op) for i, op in enumerate(ops)
                  if type(op).needs_energy is not operations.Operation.needs_energy]
        # Between events (steps where no trigger may be due, Trigger.next_step) no trigger is asked, and
        # only the operations with conditions of their own are (wanted(sim, False)): the same calls that
        # can act, without the Python of the others (docs/performance.md, "Small systems").
        none_due = [False] * len(ops)
        before_quiet = [(i, op) for i, op in before if not op.acts_only_when_due()]
        after_quiet = [(i, op) for i, op in after if not op.acts_only_when_due()]
        next_due = self.step         # no trigger may be due before this step
        # A dynamics with noise on every particle is never absorbed: no check (and no reduction) at all.
        check = not self.dynamics.always_moving
        watch = any(op.needs_absorption for op in ops)
        serial = self.comm.size == 1
        # the steps between events of a small system in one compiled call (core/steploop.py)
        loop_fits = self._cell_steps_fit(ops)
        self.interrupted = False
        while True:
            if self._interrupt_watched and self._interrupt_due(end):
                self.interrupted = True
                break
            step = self.step
            if step >= next_due:
                due = [t(step) for t in triggers]      # once per step, in order, on every rank
                next_due = min(t.next_step(step + 1) for t in triggers) if triggers else end
                run_before, run_after = before, after
            else:
                due, run_before, run_after = none_due, before_quiet, after_quiet
            for i, op in run_before:
                if op.wanted(self, due[i]):
                    op.act(self)
            stop = min(next_due, end)
            if loop_fits and stop > step + 1 and due is none_due and self._cell_steps_now():
                # steps up to the next event in compiled code; a signal is seen at its end (at most the
                # steps to the next logged step later), where the loop's top asks as before
                if not self._cell_steps(min(stop, self.nlist.last_sort + self.nlist.sort_every)):
                    continue        # stopped before the pass of self.step: the loop's top takes it
                step = self.step    # (its pass done: no active particle, or few)
            else:
                self.compute(energy=any(op.needs_energy(self, due[i]) for i, op in energy))
            self.absorbed_now = False
            # While few particles are active (global) the step has one collective: the absorbing check
            # rides on the reduction of the step's rebuild vote, taken now instead of in advance().
            if self.nlist.few_active and self.nlist.sparse_valid:
                absorbed = self._reduce_early(self._active_count() + self._moving())
                if check and (watch or self.absorbed_step < 0):
                    self.absorbed_now = absorbed
            elif check and (watch or self.absorbed_step < 0):
                local = self._active_count() + self._moving()
                # (one rank: the sum is its own count)
                self.absorbed_now = (bool(local == 0) if serial else
                                     bool(self.domain.sum_int(np.array([local]))[0] == 0))
            if self.absorbed_now:
                if self.absorbed_step < 0:
                    self.absorbed_step = step
            for i, op in run_after:
                if op.wanted(self, due[i]):
                    op.act(self)
            if self.stop_reason is not None or step >= end:
                break
            self.advance()
        if self.interrupted:    # the state x_k to a checkpoint, no end_time: `mpisim resume` continues here
            if self.writer is not None:
                self.checkpoint()
                with writing(self.output_path):
                    self.writer.close()
                self.writer = None
                self._release_lock()
            return self
        for op in ops:
            op.finish(self)
        self._done_step = self.step
        # A complete run that may be carried on keeps its last state x_k (taken after step k's pass and
        # records, which a resume drops and does again, as it does for any checkpoint at step k).
        keep = self.run_complete and cfg.run.keep_checkpoint and self.stop_reason != "absorbed"
        if keep and self.writer is not None:
            problem = self._no_room_for_checkpoint()
            if problem:     # the run is complete without it: finish the file, say what is lost
                keep = False
                if self.comm.rank == 0:
                    warnings.warn(f"{problem}: the run's last state is not kept (it cannot be carried on)")
        if self.writer is not None:
            # Everything reaches the disk before the file is marked finished: a failed write is never
            # followed by end_time (docs/file-format.md, "Write errors").
            if keep:
                self.checkpoint()
            else:
                self.flush()
            with writing(self.output_path):
                self.writer.set_provenance(end_time=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                           absorbed=self.absorbed_step >= 0,
                                           absorbed_step=np.int64(self.absorbed_step),
                                           last_step=np.int64(self.step),
                                           stopped=self.stop_reason or "")
                self.writer.close()
            self.writer = None
            if self.run_complete:
                if not keep:
                    self._remove_checkpoint()
                if self.output_path != self.final_path:
                    self._replace_output()
            self._release_lock()
        return self

    def stop(self, reason):
        """End the current run() after this step (from an operation; the same call on every rank). The
        run is then complete: its last frame is written, its checkpoint kept or removed, and a later run()
        returns at once (after set_positions() it runs again)."""
        self.stop_reason = str(reason)

    @property
    def run_complete(self):
        """Whether the configured run is over: at or past ``run.steps``, or stopped by an operation."""
        return self.step >= self.config.run.steps or self.stop_reason is not None

    def add(self, fn, trigger):
        """Call ``fn(sim)`` during run() at the steps of ``trigger`` (a Trigger, or an int: every that
        many steps), on every rank; returns the operation (``sim.operations.remove(op)`` detaches it)."""
        op = operations.Callback(trigger, fn)
        self.operations.append(op)
        return op

    def close(self):
        """Close the output and free the rank grid's communicator (collective). The simulation cannot
        run after this; ``with Simulation(...) as sim:`` calls it on leaving the block."""
        if self.writer is not None:
            writer, self.writer = self.writer, None
            with writing(self.output_path):
                writer.close()
        self.domain.close()
        self._release_lock()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        # close() is collective: after a failure on one rank the others may never reach it, and the
        # caller (cli.guarded) aborts the job instead.
        if exc_type is None:
            self.close()
        elif self.comm.size == 1 and not isinstance(exc, WriteError):
            self.close()
        # After a failed write HDF5 cannot close the file (a second attempt crashes in H5F__close_cb):
        # cli.guarded ends the process without it; the lock goes with the process.

    # ------------------------------------------------------------------------------- checkpoint/restart
    def stop_on_signals(self, signals=(signal.SIGTERM, signal.SIGUSR1)):
        """Make these signals end run() early and cleanly: a checkpoint (when writing), no end_time, so
        that ``mpisim resume`` continues the run as if uninterrupted (unlike ``stop()``, which completes
        the run). For batch systems, which send SIGTERM before a time limit (``sbatch --signal``); to a
        launcher send SIGUSR1, which mpirun and srun forward to the ranks (on SIGTERM they kill them).
        Every rank installs the handler; rank 0's flag decides, at logged steps (every step on one
        rank). Main thread only.

        SIGINT (Ctrl-C) when given: the same stop, unless the process ignores SIGINT (a background job
        of a shell, which must not stop on the terminal's Ctrl-C: left ignored); a second SIGINT
        interrupts at once (KeyboardInterrupt; the last checkpoint is kept). The handlers stay after
        run() ends, so only a process that ends with the run should give SIGINT (the CLI does)."""
        def handler(signum, frame):
            if signum == signal.SIGINT and self.interrupt_reason == "SIGINT":
                raise KeyboardInterrupt     # the user insists
            self.interrupt_reason = signal.Signals(signum).name
        for s in signals:
            if s == signal.SIGINT and signal.getsignal(s) is signal.SIG_IGN:
                continue
            signal.signal(s, handler)
        self._interrupt_watched = True

    def _interrupt_due(self, end):
        """Whether a signal asked to stop (stop_on_signals), at the top of step k (same answer on every
        rank)."""
        if not self._interrupt_watched or self.step >= end:
            return False
        if self.comm.size > 1:
            if self.step % self.config.run.log_every:
                return False
            self.interrupt_reason = on_root(self.comm, lambda: self.interrupt_reason)
        return self.interrupt_reason is not None

    def checkpoint(self):
        """Flush the observables and write OUT.h5.ckpt atomically (mpisim/io/checkpoint.py). Collective."""
        from .io import checkpoint_path, write_checkpoint
        self.flush()
        ckpt = checkpoint_path(self.output_path)
        problem = self._no_room_for_checkpoint()
        if problem:
            raise WriteError(f"{problem}; the previous checkpoint is kept, the run stops")
        meta = {"step": np.int64(self.step), "absorbed_step": np.int64(self.absorbed_step),
                "disp_sums": self.domain.sum_int(self.disp_sums),
                "max_disp": np.float64(self.max_disp),
                "box": self.box, "output": str(self.output_path),
                # What the output holds at this checkpoint: a resume checks that it is this run's file.
                "observable_rows": np.int64(len(self.history["step"])),
                "last_row_step": np.int64(self.history["step"][-1] if self.history["step"] else -1),
                "output_started": self._output_started()}
        with writing(ckpt + ".tmp"):
            write_checkpoint(ckpt, self.comm, self.state, self.dim, self.n_total,
                             self.config.to_toml(), meta, collective=self.writer.collective)

    def _no_room_for_checkpoint(self):
        """Why OUT.h5.ckpt cannot be written (no room on its disk: a message), or None. Collective."""
        from .io import checkpoint_path
        return on_root(self.comm, _no_room, checkpoint_path(self.output_path),
                       self.n_total * self.state.schema.width * 8)

    def flush(self):
        """The recorded observable rows to the file, and the file flushed (collective). A failed write
        raises WriteError naming the file and the OS error."""
        with writing(self.output_path):
            if self.log.rows:
                self.writer.append_observables(self.log.take())
            self.writer.flush()

    def _acquire_lock(self):
        """OUT.h5.lock on rank 0 (mpisim/io/lock.py): one writer per output, whatever the rank count;
        ConfigError on every rank if another live process holds it. Collective."""
        from .io.lock import OutputInUse, hold

        def take():
            try:
                hold(self.final_path)
            except OutputInUse as exc:
                return str(exc)
            return None
        problem = on_root(self.comm, take)
        if problem:
            raise ConfigError(problem)

    def _release_lock(self):
        if self.comm.rank == 0 and self.final_path is not None:
            from .io.lock import release
            release(self.final_path)

    def _output_started(self):
        """The output's provenance start_time (global): which run a checkpoint belongs to. Read when the
        output is opened (a read of rank 0 alone in a shared mpio file could desynchronise the ranks'
        metadata caches)."""
        if self._started is None:
            self._started = getattr(self.writer, "start_time", "")
        return self._started

    def _remove_checkpoint(self, output=None):
        """Delete the checkpoint of ``output`` (default: this run's file). Collective."""
        from .io import checkpoint_path
        ckpt = checkpoint_path(self.output_path if output is None else output)

        def unlink():   # rank 0 deletes before it broadcasts, so no rank returns before the files are gone
            for p in (ckpt, ckpt + ".tmp"):
                Path(p).unlink(missing_ok=True)
        on_root(self.comm, unlink)

    def _replace_output(self):
        """The --overwrite run is complete: its file (OUT.h5.new, closed) replaces OUT.h5 and its kept
        checkpoint, if any, OUT.h5.ckpt; the replaced run's checkpoint goes (this job holds OUT.h5's lock,
        so it is no other job's). Collective."""
        from .io import checkpoint_path

        def replace():
            os.replace(self.output_path, self.final_path)
            for p in (checkpoint_path(self.final_path), checkpoint_path(self.final_path) + ".tmp"):
                Path(p).unlink(missing_ok=True)
            if Path(checkpoint_path(self.output_path)).is_file():     # the new run's kept last state
                os.replace(checkpoint_path(self.output_path), checkpoint_path(self.final_path))
        on_root(self.comm, replace)
        self.output_path = self.final_path

    @classmethod
    def resume(cls, config, output=None, comm=None, collective=None, steps=None, overrides=()):
        """Continue the run stored in ``output`` (default: config.output.path) from its checkpoint.

        config: a RunConfig, a dict of sections, the path of a TOML file, or the path of the output
        file itself (``Simulation.resume("OUT.h5")``, like ``mpisim resume OUT.h5``: the parameters
        stored in the file). The output must have been written with the same parameters (output.path,
        run.progress_seconds and the other keys that change no result may differ); frames and observable
        rows written after the checkpoint are dropped, so the resumed run's file equals an uninterrupted
        run's, on any number of ranks. Collective.

        Carrying a run on: ``steps`` (a new run.steps) and ``overrides`` ("run.key=value" strings) may
        change the keys of ``CARRY_ON_KEYS``, which decide only where the run ends. A finished run whose
        last state was kept (run.keep_checkpoint) continues from it to the new end; the file then equals
        that of one run made with the new values from the start, as long as that run would not have
        stopped earlier. The file's /parameters take the new values.
        """
        from .io import H5MDWriter, checkpoint_path
        from .io.checkpoint import resume_target
        comm = comm if comm is not None else world()
        if isinstance(config, (str, Path)) and str(config).endswith(OUTPUT_SUFFIXES):
            output = config if output is None else output
            # the parameters of the file this resume continues (an interrupted --overwrite's new file)
            config = config_of_output(on_root(comm, resume_target, str(config)), comm)
            config = config.replace(output=dataclasses.replace(config.output, path=str(output)))
        elif isinstance(config, (str, Path)):
            config = RunConfig.from_toml(config)
        elif isinstance(config, dict):
            config = RunConfig.from_dict(config)
        config = carried_on(config, steps, overrides)
        final = str(output if output is not None else config.output.path)
        # The lock first (one writer per output), then the checks, on rank 0. An interrupted --overwrite
        # continues in its own file (OUT.h5.new), which replaces OUT.h5 when the run is complete.
        problem, output = on_root(comm, _lock_and_check, config, final)
        if problem:
            raise ConfigError(problem)
        try:
            sim = cls(config, output=output, comm=comm, source=sources.Checkpoint(checkpoint_path(output)))
        except BaseException:
            if comm.rank == 0:
                from .io.lock import release
                release(final)
            raise
        sim.final_path = final
        sim._started = on_root(comm, _start_time, output)
        sim.writer = H5MDWriter(output, config, comm, sim.dim, sim.n_total, sim.box, sim.domain.grid,
                                mode="r+", collective=collective)
        sim._opened_output = True
        sim.writer.truncate(sim.step)
        sim.writer.note_resume(sim.step)
        carried = on_root(comm, _changed_run_keys, config, output)
        if carried:
            sim.writer.set_run_parameters(*carried, sim.step, config.run.steps)
        stored = sim.writer.read_observables()
        sim.history = {k: list(v) for k, v in stored.items()}
        return sim

    def _set_clock(self, clock):
        """Continue the clock of a checkpoint (global step, absorbed_step, disp_sums, max_disp)."""
        self.step = int(clock["step"])
        self.absorbed_step = int(clock["absorbed_step"])
        # measure() sums disp_sums over ranks: the stored global sum on rank 0, zeros elsewhere.
        self.disp_sums[:] = 0
        if self.comm.rank == 0:
            stored = np.asarray(clock["disp_sums"], dtype=np.int64)
            self.disp_sums[:len(stored)] = stored
        self.max_disp = float(clock["max_disp"])

    def record(self, values):
        """Append one row of observables (``measure()``'s dict) at the current step: to ``history`` and
        to the rows the writer takes at its next flush."""
        self.log.append(self.step, values)
        self.history["step"].append(self.step)
        for k in NAMES:
            self.history[k].append(values[k])

    def _open_writer(self):
        from .io import H5MDWriter, checkpoint_path
        from .io.checkpoint import replacement_path
        path = Path(self.final_path)
        exists = on_root(self.comm, path.exists)
        if exists and not self._overwrite:
            raise FileExistsError(f"{path} exists; pass --overwrite (overwrite=True) to replace it")
        self._acquire_lock()
        st = self.state
        species = self._species(st.ids[:st.n_own])
        # An existing output is replaced only by a complete run: the new run writes OUT.h5.new (and its
        # checkpoints OUT.h5.new.ckpt) and renames it over OUT.h5 when it is complete (_replace_output).
        # Until then OUT.h5 and its checkpoint stay as they were (a reader keeps reading the old run); an
        # interrupted overwrite is resumed in OUT.h5.new (resume_target). A replacement file left by an
        # earlier overwrite of this output is stale: this job holds the output's lock.
        side = replacement_path(path)
        on_root(self.comm, lambda: [Path(p).unlink(missing_ok=True)
                                    for p in (side, checkpoint_path(side), checkpoint_path(side) + ".tmp")])
        self.output_path = side if exists else str(path)
        with writing(self.output_path):
            writer = H5MDWriter(self.output_path, self.config, self.comm, self.dim, self.n_total, self.box,
                                self.domain.grid, species=species)
            writer.write_static(st.ids[:st.n_own].copy(), st.radius[:st.n_own].copy(), species)
        if not exists:
            self._remove_checkpoint()  # a checkpoint without its output is stale: never resumed
        self.writer = writer
        self._opened_output = True

    def _reopen_writer(self):
        from .io import H5MDWriter
        self._acquire_lock()
        self.writer = H5MDWriter(self.output_path, self.config, self.comm, self.dim, self.n_total, self.box,
                                 self.domain.grid, mode="r+")

    def _species(self, ids):
        """Species index (int32) of the given ids for a system of species, else None (sources.species_of)."""
        return sources.species_of(self.config, ids)

    def _sofk_measurement(self):
        from .parallel.sofk import from_config
        try:
            return from_config(self.config.structure_factor, self.box, self.dim, self.n_total, comm=self.comm)
        except ValueError as exc:
            raise ConfigError(f"structure_factor.{exc}") from None

    def measure_structure_factor(self):
        """S(k) of the current positions (docs/structure-factor.md), appended to ``structure_factor`` and
        to /structure_factor. Collective; the result is global and independent of ranks."""
        if self.sofk is None:
            self.sofk = self._sofk_measurement()
        if self.structure_factor and self.structure_factor[-1].step == self.step:
            return self.structure_factor[-1]     # measured at this step already (by run())
        st = self.state
        result = self.sofk.compute(st.pos[:st.n_own, :self.dim], step=self.step)
        self.structure_factor.append(result)
        if self.writer is not None:
            with writing(self.output_path):
                self.writer.append_structure_factor(result, self.sofk.attrs())
        return result

    def write_snapshot(self):
        st = self.state
        if self.writer.last_snapshot_step() == self.step:
            return
        with writing(self.output_path):
            self.writer.write_snapshot(self.step, st.ids[:st.n_own].copy(), st.pos[:st.n_own],
                                       st.image[:st.n_own])

    # ------------------------------------------------------------------------------------------ results
    @property
    def observables(self):
        """Recorded series as numpy arrays (global, on every rank)."""
        return {k: np.asarray(v) for k, v in self.history.items()}

    def snapshot(self):
        """Global (ids, positions (N, d), images (N, d)) sorted by id, on every rank (gathers: small N)."""
        st = self.state
        ids, pos, img, *_ = st.owned(self.dim)
        if self.comm.size > 1:
            parts = all_gather(self.comm, (ids, pos, img))
            ids = np.concatenate([p[0] for p in parts])
            pos = np.concatenate([p[1] for p in parts])
            img = np.concatenate([p[2] for p in parts])
            o = np.argsort(ids)
            ids, pos, img = ids[o], pos[o], img[o]
        return ids, pos, img


OUTPUT_SUFFIXES = (".h5", ".hdf5", ".h5md")

def _check_memory(n_total, comm):
    """ConfigError on every rank if the particles this machine's ranks hold cannot fit in its memory
    (BYTES_PER_PARTICLE each), before any allocation. Collective."""
    local = 1
    if comm.size > 1 and hasattr(comm, "Split_type"):
        from mpi4py import MPI
        node = comm.Split_type(MPI.COMM_TYPE_SHARED)
        local = node.size
        node.Free()
    need = n_total / comm.size * local * BYTES_PER_PARTICLE
    have = machine_memory()
    short = float(max_floats(comm, np.array([need / have if have else 0.0]))[0])
    if short > 1.0:
        raise ConfigError(f"system.n: {n_total} particles need about {need / 1e9:.3g} GB on this machine "
                          f"({local} of {comm.size} ranks here, {BYTES_PER_PARTICLE} bytes per particle), more "
                          f"than its {have / 1e9:.3g} GB; use fewer particles or more machines")


def config_of_output(path, comm=None):
    """The RunConfig stored in an output file's /parameters, with output.path = ``path`` (read on rank
    0, the same on every rank). ConfigError if the file is missing, not an mpisim output, or its
    parameters no longer validate."""
    from .config import tomllib
    from .io import read_parameters
    comm = comm if comm is not None else world()

    def stored():
        from .io.lock import describe_open_error
        if not Path(path).is_file():
            return None, f"no such file {str(path)!r}"
        try:
            return read_parameters(path), None
        except KeyError:
            return None, f"{path} is not an mpisim output (no /parameters)"
        except OSError as exc:
            return None, describe_open_error(path, exc)
    text, problem = on_root(comm, stored)
    if problem:
        raise ConfigError(problem)
    try:
        config = RunConfig.from_stored(tomllib.loads(text))     # older files: their flat [dynamics]
    except ConfigError as exc:
        raise ConfigError(f"{path}: its stored parameters no longer validate ({exc})") from None
    return config.replace(output=dataclasses.replace(config.output, path=str(path)))


def _lock_and_check(config, output):
    """Take OUT.h5.lock, then ``_resume_problem`` of the file the resume continues (OUT.h5, or the
    OUT.h5.new of an interrupted --overwrite): (None, that file) with the lock held, or (the message of
    the failure, "resume: ...", None) with the lock released again. Serial (rank 0)."""
    from .io.checkpoint import checkpoint_path, replacement_path, resume_target
    from .io.lock import OutputInUse, hold, release
    try:
        hold(output)
    except OutputInUse as exc:
        return f"resume: {exc}", None
    target = resume_target(output)
    side = replacement_path(output)
    if target == output and Path(side).is_file():
        problem = (f"{side}, the new file of an --overwrite of {output}, has no checkpoint {checkpoint_path(side)!r} "
                   f"(stopped before its first one); start again with --overwrite, or delete {side} to resume "
                   f"{output} itself")
    else:
        problem = _resume_problem(config, target)
    if problem:
        release(output)
        return f"resume: {problem}", None
    return None, target


def _no_room(path, n_bytes):
    """Why a file of about ``n_bytes`` cannot be written next to ``path`` (a message), or None. Serial."""
    import shutil
    directory = Path(path).resolve().parent
    free = shutil.disk_usage(directory).free
    need = int(n_bytes * 1.05) + (1 << 20)    # the data, plus HDF5's metadata and a margin
    if free < need:
        return (f"{path}: no room for the checkpoint (about {need / 1e6:.1f} MB needed, {free / 1e6:.1f} MB "
                f"free in {directory})")
    return None


def _start_time(output):
    """The provenance start_time of an output file (serial)."""
    import h5py
    from .io.format import start_time
    with h5py.File(output, "r") as f:
        return start_time(f)


#: The [run] keys a resume may change: where the run ends (mpisim resume --steps K --set run.key=value).
CARRY_ON_KEYS = ("steps", "stop_when_steady", "steady_min_steps")
#: ... and those that change no result (speed, safety, what is printed), which a resume never compares.
_NO_RESULT_KEYS = {"output.path", "run.progress_seconds", "run.step_kind", "run.pair_search",
                   "run.checkpoint_every", "run.checkpoint_minutes", "run.keep_checkpoint"}
_CARRY_ON_NAMES = {f"run.{k}" for k in CARRY_ON_KEYS}     # (as --set and the flat comparisons name them)


def carried_on(config, steps=None, overrides=()):
    """``config`` with run.steps = ``steps`` (if given) and ``overrides`` ("section.key=value") applied;
    ConfigError if an override names a key a resume may not change (not in CARRY_ON_KEYS or the keys
    that change no result)."""
    allowed = sorted(_CARRY_ON_NAMES | _NO_RESULT_KEYS - {"output.path"})
    for item in overrides:
        key = item.split("=", 1)[0].strip()
        if key not in allowed:
            raise ConfigError(f"--set {item!r}: a resume can change only {', '.join(allowed)}; the other "
                              "parameters are the file's")
    if steps is not None:
        overrides = [*overrides, f"run.steps={int(steps)}"]
    if not overrides:
        return config
    return RunConfig.from_dict(apply_overrides(config.to_dict(), overrides))


def _changed_run_keys(config, output):
    """({[run] key: value} of the CARRY_ON_KEYS on which ``config`` differs from ``output``'s stored parameters,
    the stored parameters' TOML with those values), or None if none differs. Serial (rank 0)."""
    from .config import tomllib
    from .io import read_parameters
    # (the stored tables as they are: a RunConfig of them would check system.init, which may be gone)
    stored = tomllib.loads(read_parameters(output))
    run = stored.setdefault("run", {})
    changed = {k: getattr(config.run, k) for k in CARRY_ON_KEYS
               if getattr(config.run, k) != run.get(k, getattr(Run(), k))}
    if not changed:
        return None
    run.update(changed)
    return changed, toml_text(stored)


def _resume_problem(config, output):
    """Why ``output`` cannot be resumed with ``config`` (a message), or None. Serial (rank 0)."""
    from .io.lock import describe_open_error
    try:
        return _resume_problem_of(config, output)
    except OSError as exc:
        return describe_open_error(output, exc)
    except (KeyError, ValueError, IndexError, TypeError) as exc:
        return f"{output} is damaged or not a complete mpisim output ({type(exc).__name__}: {exc})"


def _resume_problem_of(config, output):
    import h5py
    from .config import tomllib
    from .io import checkpoint_path, read_parameters
    from .io import format as fmt
    path, ckpt = Path(output), Path(checkpoint_path(output))
    if not path.is_file():
        return f"no such output file {output!r}"
    try:
        stored = tomllib.loads(read_parameters(output))
    except KeyError:
        return f"{output} is not an mpisim output file"
    try:  # keys added to the configuration since the file was written take their defaults; keys of the
        # old flat [dynamics] table that the scheme does not take are dropped (RunConfig.from_stored)
        stored = tomllib.loads(RunConfig.from_stored(stored).to_toml())
    except ConfigError:
        pass
    ignore = _NO_RESULT_KEYS | _CARRY_ON_NAMES
    mine, theirs = _flat(tomllib.loads(config.to_toml())), _flat(stored)
    differ = sorted(k for k in set(mine) | set(theirs) if k not in ignore and mine.get(k) != theirs.get(k))
    if differ:
        shown = ", ".join(f"{k} (file: {theirs.get(k, 'absent')!r}, config: {mine.get(k, 'absent')!r})"
                          for k in differ)
        return f"{output} was written with different parameters: {shown}"
    with h5py.File(output, "r") as f:
        missing = fmt.missing_series(f, NAMES)
        prov = fmt.read_provenance(f)
        # what a checkpoint must match (_checkpoint_problems): the output's start and its observable rows
        held = (fmt.start_time(f), fmt.read_series(f, "activity")[0]) if not missing else None
    if missing:
        return (f"{output} was written by an older mpisim without "
                f"{', '.join('/' + fmt.observable_path(name) for name in missing)}; start again with --overwrite")
    last, stopped = int(prov.get("last_step", -1)), str(prov.get("stopped", ""))
    if str(prov.get("end_time", "")) and (stopped or last >= int(theirs.get("run.steps", 0))):
        done = f"{output} is a finished run (last step {last}{', ' + stopped if stopped else ''})"
        if stopped == "absorbed":
            return f"{done}: nothing moves any more; nothing to resume"
        if not ckpt.is_file():
            return (f"{done} without its last state (run.keep_checkpoint = false, or written before mpisim "
                    f"kept it); nothing to resume: run it again with a larger run.steps")
        if config.run.steps <= last:
            return f"{done}; to carry it on give a larger run.steps (mpisim resume --steps K, K > {last})"
        if stopped == "steady" and config.run.stop_when_steady and config.run.steady_min_steps <= last:
            return (f"{done}; carried on with the steady stop it would stop at once: also set "
                    f"run.stop_when_steady=false (or run.steady_min_steps > {last})")
    if not ckpt.is_file():
        return f"{output} has no checkpoint {str(ckpt)!r} (killed before its first one); start again with --overwrite"
    try:
        problems = _checkpoint_problems(config, held, str(ckpt), stored, ignore)
    except (OSError, KeyError, ValueError, TypeError) as exc:   # a damaged file's HDF5 or layout errors
        problems = [f"unreadable ({type(exc).__name__}: {exc})"]
    if problems:
        return (f"checkpoint {ckpt} cannot be resumed: {'; '.join(problems)} (start again with "
                f"--overwrite, or restore a good copy of the checkpoint)")
    return None


def _checkpoint_problems(config, held, ckpt, stored, ignore):
    """What makes the checkpoint ``ckpt`` unfit to continue the output (phrases; empty if nothing): it
    must open, hold the parameters stored in the output, belong to this output (``held``: its start time
    and the steps of its observable rows, which the checkpoint must have seen), and pass
    io.verify_checkpoint (checksums, finite positions in the box, the config's radii). Checkpoints
    written before these records existed are checked for what they hold. Serial (rank 0)."""
    import h5py
    from .config import tomllib
    from .io import format as fmt
    from .io.checkpoint import FORMAT, checkpoint_meta, has_state, verify_checkpoint
    try:
        with h5py.File(ckpt, "r") as c:
            meta = checkpoint_meta(c)
            state = has_state(c)
    except OSError as exc:
        return [f"not a readable HDF5 file ({exc})"]
    if int(meta.get("format", -1)) != FORMAT or not state:
        return [f"not an mpisim checkpoint of format {FORMAT}"]
    problems = []
    try:
        theirs = tomllib.loads(str(meta.get(fmt.CONFIG_TOML, "")))
    except tomllib.TOMLDecodeError:
        theirs = {}
    try:  # keys added or dropped since the checkpoint was written: as for the output (RunConfig.from_stored)
        theirs = tomllib.loads(RunConfig.from_stored(theirs).to_toml())
    except ConfigError:
        pass
    theirs = _flat(theirs)
    mine = _flat(stored)
    differ = sorted(k for k in set(mine) | set(theirs) if k not in ignore and mine.get(k) != theirs.get(k))
    if differ:
        problems.append("its parameters differ from the output's: " + ", ".join(
            f"{k} (checkpoint: {theirs.get(k, 'absent')!r}, output: {mine.get(k, 'absent')!r})" for k in differ[:5]))
    started, rows = held
    if meta.get("output_started") not in (None, "", started):
        problems.append(f"it belongs to a run started at {meta['output_started']}, the output's started at {started}")
    step = int(meta.get("step", -1))
    if not 0 <= step <= config.run.steps:
        problems.append(f"its step {step} is outside the run's 0..{config.run.steps}")
    if "observable_rows" in meta:
        n_rows, last = int(meta["observable_rows"]), int(meta["last_row_step"])
        if len(rows) < n_rows or (n_rows and int(rows[n_rows - 1]) != last):
            now = f"{len(rows)} rows, the last at step {int(rows[-1]) if len(rows) else '-'}"
            problems.append(f"taken at step {step} when the output held {n_rows} observable rows (the last "
                            f"at step {last}); the output holds {now}")
    box = meta["box"] if "box" in meta else config.box_edges()
    problems += verify_checkpoint(ckpt, config.system.dim, box,
                                  radii_of=lambda ids: sources.particle_radii(config, ids))
    return problems


def _flat(tables):
    return {f"{sec}.{k}": v for sec, table in tables.items() for k, v in table.items()}
