"""The simulation: state, decomposition, dynamics and writers composed into one run.

    sim = Simulation.from_config("run.toml", output="out.h5")   # or a dict
    sim.run()
    sim.observables["activity"]                                  # numpy arrays, global
"""
import math
import sys
import time
from pathlib import Path

import numpy as np

from . import kernels
from .config import ConfigError, RunConfig
from .cells import PairList
from .domain import Domain, world
from .dynamics import DynamicsParams
from .kernels import C_ENERGY_HI, C_PAIRS, N_COUNTERS, exact_value
from .observables import NAMES, ObservableLog
from .rng import STREAM_INIT, STREAM_RADII
from .state import ParticleState


class Simulation:
    """One run on all ranks of ``comm``. Values are global unless named rank-local."""

    def __init__(self, config, output=None, comm=None, overwrite=False, write=True):
        self.config = config
        self.comm = comm if comm is not None else world()
        s = config.system
        self.dim = s.dim
        self.n_total = s.n
        self.seed = s.seed
        self.dynamics = DynamicsParams(config.dynamics)
        self.output_path = output if output is not None else config.output.path
        radii = self._radii()
        box = np.asarray(config.box_edges(), dtype=np.float64)
        if s.init != "random":
            box, init = self._read_init(s.init)
        cutoff = 2.0 * float(radii.max())
        try:
            self.domain = Domain(box, self.dim, cutoff, skin=config.run.skin, comm=self.comm)
        except ValueError as exc:
            raise ConfigError(f"mpirun -n {self.comm.size}: {exc}") from None
        self.box = self.domain.box
        self.state = ParticleState(n_aux=self.dynamics.n_aux)
        if s.init == "random":
            pos = initial_positions(self.seed, self.n_total, self.dim, self.box)
        else:
            pos = init
        mine = np.flatnonzero(self.domain.owns(pos))
        self.state.set_owned(mine, pos[mine], np.zeros((len(mine), 3), np.int32), radii[mine], pos[mine])
        self.pairs = PairList()
        self.need_rebuild = True
        self.rebuilds = 0
        self.last_sort = None
        self.step = 0
        self.absorbed_step = -1
        self.counters = np.zeros(N_COUNTERS, dtype=np.int64)
        self.disp_sums = np.zeros(2, dtype=np.int64)  # rank-local exact sum of |dx| of the last step
        self.max_disp = 0.0                            # rank-local max |dx| of the last step
        self.log = ObservableLog()
        self.history = {name: [] for name in ("step",) + NAMES}
        self.writer = None
        self._write = write
        self._overwrite = overwrite

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

    def _radii(self):
        s = self.config.system
        ids = np.arange(s.n)
        if s.radii:
            radii, fr = self.config.species_radii()
            counts = np.floor(np.cumsum([0.0] + fr) * s.n + 0.5).astype(np.int64)
            out = np.empty(s.n)
            for k, r in enumerate(radii):
                out[counts[k]:counts[k + 1]] = r
            return out
        if s.polydispersity:
            u = _uniforms(self.seed, STREAM_RADII, ids, 0)
            return s.radius * (1.0 + s.polydispersity * (2.0 * u - 1.0))
        return np.full(s.n, s.radius)

    def _read_init(self, path):
        from .io import read_frame
        _, ids, pos, _, _, edges = read_frame(path)
        if len(ids) != self.n_total or len(edges) != self.dim:
            raise ConfigError(f"system.init: {path} holds {len(ids)} particles in {len(edges)}d, the config "
                              f"asks for {self.n_total} in {self.dim}d")
        box = np.ones(3)
        box[:self.dim] = edges
        full = np.zeros((self.n_total, 3))
        full[ids, :self.dim] = pos
        return box, full

    # --------------------------------------------------------------------------------------------- step
    def compute(self):
        """Refresh ghosts (or rebuild the pair list) and run the pair pass at the current positions."""
        st, dyn = self.state, self.dynamics
        if self.need_rebuild:
            self._rebuild()
        else:
            self.domain.forward(st)
        n = st.n_own + st.n_ghost
        st.active[:n] = 0
        st.acc[st.n_own:n] = 0
        self.counters[:] = 0
        kernels.pair_pass(dyn.scheme, dyn.params, dyn.potential, self.seed, self.step, st.pos, st.ids,
                          st.radius, st.n_own, self.box, self.pairs.first, self.pairs.second, self.pairs.n,
                          st.acc, st.active, self.counters)

    def _rebuild(self):
        """Migrate, re-sort now and then, exchange ghosts and rebuild cells and the Verlet list."""
        st, dom = self.state, self.domain
        st.n_ghost = 0
        dom.migrate(st)
        if self.last_sort is None or self.step - self.last_sort >= self.config.run.sort_every:
            self._sort()
            self.last_sort = self.step
        dom.borders(st)
        n = st.n_own + st.n_ghost
        dom.cells.build(st.pos, st.shift, self.box, st.n_own, n)
        self.pairs.build(dom.cells, st.pos, st.shift, self.box, st.n_own, dom.reach)
        st.travel[:st.n_own] = 0.0
        self.need_rebuild = False
        self.rebuilds += 1

    def measure(self):
        """Global observables of the current positions (after compute()); identical on all ranks."""
        st = self.state
        msd = np.zeros(2, dtype=np.int64)
        kernels.msd_sum(st.pos, st.image, st.x0, self.box, st.n_own, self.dim, msd)
        local = np.concatenate([[kernels.count_active(st.active, st.n_own)], self.counters, msd,
                                self.disp_sums])
        tot = self.domain.sum_int(local)
        n = self.n_total
        return {
            "activity": tot[0] / n,
            "active_pairs": int(tot[1 + C_PAIRS]),
            "energy": exact_value(tot[1 + C_ENERGY_HI], tot[2 + C_ENERGY_HI]),
            "msd": exact_value(tot[-4], tot[-3]) / n,
            "mean_displacement": exact_value(tot[-2], tot[-1]) / n,
            "max_displacement": self.domain.max_float(self.max_disp),
        }

    def advance(self):
        """Apply the displacements accumulated by compute(): x_k -> x_{k+1}; step += 1."""
        st, dyn = self.state, self.dynamics
        self.disp_sums[:] = 0
        self.max_disp, travel = kernels.apply_step(dyn.scheme, dyn.params, self.seed, self.step, self.dim,
                                                   st.pos, st.image, st.ids, st.n_own, self.box, st.acc,
                                                   st.travel, self.disp_sums)
        # A pair can only have come within contact if one of its particles travelled half the skin.
        flag = np.array([travel > 0.5 * self.domain.skin], dtype=np.int64)
        self.need_rebuild = bool(self.domain.sum_int(flag)[0])
        self.step += 1

    def _sort(self):
        st, cells = self.state, self.domain.cells
        key = np.zeros(st.n_own, dtype=np.int64)
        p = st.pos[:st.n_own]
        for a in (2, 1, 0):
            c = np.clip(((p[:, a] - cells.origin[a]) / cells.width[a]).astype(np.int64), 0, cells.dims[a] - 1)
            key = key * cells.dims[a] + c
        st.sort_owned(key)

    # ---------------------------------------------------------------------------------------------- run
    def run(self, steps=None):
        """Run to ``run.steps`` (or ``steps`` more), stopping when absorbed if so configured. Returns self."""
        cfg = self.config
        end = cfg.run.steps if steps is None else self.step + steps
        if self._write and self.writer is None:
            self._open_writer()
        progress = Progress(self, end) if self.comm.rank == 0 and cfg.run.progress_seconds > 0 else None
        snapshot_steps = snapshot_schedule(cfg.output, end)
        while True:
            self.compute()
            last = self.step >= end
            logged = self.step % cfg.run.log_every == 0 or last
            absorbed = False
            if logged or cfg.run.stop_when_absorbed:
                local = kernels.count_active(self.state.active, self.state.n_own)
                absorbed = self.domain.sum_int(np.array([local]))[0] == 0
            if logged or (absorbed and self.absorbed_step < 0):
                self._record(self.measure())
            if absorbed and self.absorbed_step < 0:
                self.absorbed_step = self.step
            stop = last or (absorbed and cfg.run.stop_when_absorbed)
            if self.writer is not None and (self.step in snapshot_steps or stop):
                self.write_snapshot()
            if self.writer is not None and (len(self.log.rows) and
                                            (stop or self.step % cfg.output.flush_every == 0)):
                self.writer.append_observables(self.log.take())
                self.writer.flush()
            if progress is not None:
                progress.update(stop)
            if stop:
                break
            self.advance()
        if self.writer is not None:
            self.writer.set_provenance(end_time=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                       absorbed=self.absorbed_step >= 0,
                                       absorbed_step=np.int64(self.absorbed_step),
                                       last_step=np.int64(self.step))
            self.writer.close()
            self.writer = None
        return self

    def _record(self, values):
        self.log.append(self.step, values)
        self.history["step"].append(self.step)
        for k in NAMES:
            self.history[k].append(values[k])

    def _open_writer(self):
        from .io import H5MDWriter
        path = Path(self.output_path)
        exists = self.comm.bcast(path.exists() if self.comm.rank == 0 else None, root=0)
        if exists and not self._overwrite:
            raise FileExistsError(f"{path} exists; pass --overwrite (overwrite=True) to replace it")
        self.writer = H5MDWriter(path, self.config, self.comm, self.dim, self.n_total, self.box,
                                 self.domain.grid)
        st = self.state
        self.writer.write_static(st.ids[:st.n_own].copy(), st.radius[:st.n_own].copy())

    def write_snapshot(self):
        st = self.state
        if self.writer.last_snapshot_step() == self.step:
            return
        self.writer.write_snapshot(self.step, st.ids[:st.n_own].copy(), st.pos[:st.n_own], st.image[:st.n_own])

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
            parts = self.comm.allgather((ids, pos, img))
            ids = np.concatenate([p[0] for p in parts])
            pos = np.concatenate([p[1] for p in parts])
            img = np.concatenate([p[2] for p in parts])
            o = np.argsort(ids)
            ids, pos, img = ids[o], pos[o], img[o]
        return ids, pos, img


def snapshot_schedule(output, end):
    """Steps at which to write a frame: 0, every K, log-spaced, the explicit list (the last is added by
    the run loop)."""
    steps = {0}
    if output.snapshot_every:
        steps.update(range(0, end + 1, output.snapshot_every))
    if output.snapshot_per_decade:
        k = 0
        while True:
            s = int(round(10 ** (k / output.snapshot_per_decade)))
            if s > end:
                break
            steps.add(s)
            k += 1
    steps.update(s for s in output.snapshot_steps if s <= end)
    return steps


def _uniforms(seed, stream, ids, sub):
    from .rng_arrays import uniforms
    return uniforms(seed, 0, stream, ids, sub)


def initial_positions(seed, n, dim, box):
    """Uniform random positions keyed by (seed, id): the same on any number of ranks. Shape (n, 3)."""
    from .rng_arrays import uniforms
    ids = np.arange(n)
    pos = np.zeros((n, 3))
    for a in range(dim):
        pos[:, a] = uniforms(seed, 0, STREAM_INIT, ids, a) * box[a]
        pos[:, a] = np.where(pos[:, a] >= box[a], 0.0, pos[:, a])
    return pos


class Progress:
    """Progress lines on rank 0: step, steps/s, activity, ETA."""

    def __init__(self, sim, end):
        self.sim = sim
        self.end = end
        self.every = sim.config.run.progress_seconds
        self.t0 = self.t_last = time.perf_counter()
        self.step0 = sim.step

    def update(self, final):
        now = time.perf_counter()
        if not final and now - self.t_last < self.every:
            return
        self.t_last = now
        sim = self.sim
        done = sim.step - self.step0
        rate = done / max(now - self.t0, 1e-9)
        eta = (self.end - sim.step) / rate if rate > 0 else math.inf
        act = sim.history["activity"][-1] if sim.history["activity"] else float("nan")
        print(f"step {sim.step:>10d}/{self.end}  {rate:9.1f} steps/s  activity {act:.5f}  "
              f"ETA {_hms(eta) if not final else 'done'}", file=sys.stderr, flush=True)


def _hms(seconds):
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
