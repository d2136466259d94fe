"""The sparse step: pair work and update over the particles that can have changed, bitwise the dense step.

For the schemes without particle state or additive noise (bro-pairwise, bro-individual, sgd, rcd, gd,
sa-pairwise, sa-individual, bro-nonreciprocal) a particle moves only if it overlaps, so a pair can overlap at step k only if
it overlapped at step k-1 or one of its particles moved at step k-1. Both cases have an end that was
active at k-1 (an owned particle that moved was active) or a ghost whose position changed in the halo
refresh. These rows are the *dirty* set; the sparse pair pass visits every listed pair with at least one
dirty end, exactly once, in its listed orientation, with the dense pass's arithmetic (the overlap test
written as in ``kernels.pair_pass``, the kicks of ``kernels.pair_kicks``: same random keys, same
fixed-point sums, hence bitwise the same acc and counters; fixed-point sums do not depend on the order
of the pairs). The update then visits only the
owned rows that became active (the others have acc = 0 and do not move), and the work arrays are reset
only where they were written.

Rank-local and MPI-free: arrays only. The pair list must be the current Verlet list (``cells.PairList``)
and the row indices must not have changed since the last step (a rebuild migrates, sorts and renumbers:
the step after a rebuild is dense, and ``SparseStep.start`` picks up its active rows).
"""
import numpy as np

from ._jit import njit
from .box import minimum_image, wrap
from .fixedpoint import FIXED_SCALE, SQ_SCALE, exact_add
from .potentials import pair_energy
from .kernels import C_ENERGY_HI, C_PAIRS, D_ABS, D_SQ, pair_kicks
from .schemes import BY_ID
from .schemes.dispatch import is_particle_scheme, is_two_sided, particle_multiplier

# Scheme ids whose step the sparse kernels reproduce: no noise model (a particle moves only if it
# overlaps); with momentum (DynamicsParams.momentum) a scheme stays dense.
SPARSE_SCHEMES = tuple(s.id for s in BY_ID if not s.noise)


def supports(dynamics):
    """Whether a dynamics (core.dynamics.DynamicsParams) can take the sparse step: a stateless scheme
    without momentum (with momentum a particle keeps moving after its overlaps are gone)."""
    return dynamics.scheme in SPARSE_SCHEMES and not dynamics.momentum


class SparseStep:
    """Rank-local bookkeeping of the sparse step: the pair list's per-row adjacency and the active rows.

    Grows (never shrinks) with the rank's rows and pairs. Memory: 4 bytes per listed pair and 17 per row.
    """

    def __init__(self):
        self.fwd_lo = np.zeros(0, dtype=np.int32)      # pairs k with first[k] == p: fwd_lo[p] <= k < fwd_hi[p]
        self.fwd_hi = np.zeros(0, dtype=np.int32)
        self.rev_start = np.zeros(1, dtype=np.int32)   # rows q with (q, p) listed: rev_first[rev_start[p]:...]
        self.rev_first = np.zeros(0, dtype=np.int32)
        self.dirty = np.zeros(0, dtype=np.uint8)       # flag per row, zero between steps
        self.dirty_rows = np.zeros(0, dtype=np.int32)
        self.active_rows = np.zeros(0, dtype=np.int32)  # rows (owned and ghost) active at the last pass
        self.n_active = 0
        self.changed = np.zeros(0, dtype=np.int32)      # ghost rows whose position the halo refresh changed
        self.n_changed = 0
        self.indexed = False                            # adjacency matches the current pair list

    def _reserve_rows(self, n):
        if self.dirty.shape[0] >= n:
            return
        cap = int(n * 1.25) + 16
        self.fwd_lo = np.zeros(cap, dtype=np.int32)
        self.fwd_hi = np.zeros(cap, dtype=np.int32)
        self.rev_start = np.zeros(cap + 1, dtype=np.int32)
        self.dirty = np.zeros(cap, dtype=np.uint8)
        self.dirty_rows = np.zeros(cap, dtype=np.int32)
        self.active_rows = np.zeros(cap, dtype=np.int32)
        self.changed = np.zeros(cap, dtype=np.int32)

    def index(self, first, second, n_pairs, n_rows):
        """Per-row adjacency of the pair list (first, second)[:n_pairs] over rows [0, n_rows). O(pairs)."""
        self._reserve_rows(n_rows)
        if self.rev_first.shape[0] < n_pairs:
            self.rev_first = np.zeros(int(n_pairs * 1.25) + 16, dtype=np.int32)
        index_pairs(first, second, n_pairs, n_rows, self.fwd_lo, self.fwd_hi, self.rev_start, self.rev_first)
        self.indexed = True

    def start(self, active, n_rows):
        """Take the active rows of a dense pass (flags active[:n_rows]) as the sparse step's starting set."""
        self._reserve_rows(n_rows)
        self.n_active = collect_flags(active, n_rows, self.active_rows)
        clear_flags(self.dirty, self.changed, self.n_changed)    # a halo refresh may have noted some
        self.n_changed = 0

    def n_active_owned(self, n_own):
        """Owned rows among the active rows: the rank's activity count (as kernels.count_active)."""
        return count_below(self.active_rows, self.n_active, n_own)

    def pair_pass(self, scheme, params, potential, seed, step, pos, ids, radius, n_own, box, first, second,
                  acc, active, counters, energy):
        """The sparse pair pass at ``step``: the dense ``kernels.pair_pass``'s acc, active and counters,
        from the rows active at the last pass and the ghosts ``changed`` since (``note_changed``). Expects
        acc and active as the last pass and update left them (reset here where they were written)."""
        n_dirty = mark_dirty(self.active_rows, self.n_active, self.changed, self.n_changed, self.dirty,
                             self.dirty_rows, active, acc)
        self.n_active = sparse_pair_pass(scheme, params, potential, seed, step, pos, ids, radius, n_own, box,
                                         first, second, self.fwd_lo, self.fwd_hi, self.rev_start,
                                         self.rev_first, self.dirty_rows, n_dirty, self.dirty, acc, active,
                                         self.active_rows, counters, energy)
        clear_flags(self.dirty, self.dirty_rows, n_dirty)
        self.n_changed = 0
        return self.n_active

    def apply(self, scheme, params, seed, step, dim, pos, image, ids, n_own, box, acc, travel, build_pos,
              from_build, disp_sums):
        """The dense ``kernels.apply_step`` over the owned active rows only. Returns (max |dx|, the largest
        travel among the rows it moved); the caller keeps the running maximum since the list was built."""
        return sparse_apply_step(scheme, params, seed, step, dim, pos, image, ids, n_own, box, acc,
                                 self.active_rows, self.n_active, travel, build_pos, from_build, disp_sums)

    @property
    def nbytes(self):
        return sum(a.nbytes for a in (self.fwd_lo, self.fwd_hi, self.rev_start, self.rev_first, self.dirty,
                                      self.dirty_rows, self.active_rows, self.changed))


@njit
def index_pairs(first, second, n_pairs, n_rows, fwd_lo, fwd_hi, rev_start, rev_first):
    """fwd_lo/fwd_hi: the range of pairs whose first row is p (the list builder emits a row's pairs as
    one run; checked); rev_start/rev_first: counting sort of the first rows by second row."""
    for p in range(n_rows):
        fwd_lo[p] = 0
        fwd_hi[p] = 0
        rev_start[p] = 0
    rev_start[n_rows] = 0
    k = 0
    while k < n_pairs:
        p = first[k]
        if fwd_hi[p] != 0:
            raise ValueError("index_pairs: the pairs of a row are not contiguous in the list")
        fwd_lo[p] = k
        while k < n_pairs and first[k] == p:
            k += 1
        fwd_hi[p] = k
    for k in range(n_pairs):
        rev_start[second[k] + 1] += 1
    for p in range(n_rows):
        rev_start[p + 1] += rev_start[p]
    for k in range(n_pairs):
        q = second[k]
        rev_first[rev_start[q]] = first[k]
        rev_start[q] += 1
    for p in range(n_rows, 0, -1):
        rev_start[p] = rev_start[p - 1]
    rev_start[0] = 0


@njit
def collect_flags(flags, n, out):
    m = 0
    for p in range(n):
        if flags[p]:
            out[m] = p
            m += 1
    return m


@njit
def count_below(rows, n, limit):
    c = 0
    for k in range(n):
        if rows[k] < limit:
            c += 1
    return c


@njit
def mark_dirty(active_rows, n_active, changed, n_changed, dirty, dirty_rows, active, acc):
    """Dirty rows = the ghosts changed by the halo refresh (already flagged, listed once by
    ``store_changed``) and the last pass's active rows (flagged here); each listed once. The last
    pass's active flags and acc rows are reset (acc of owned rows is already 0 after the update; ghost
    rows hold the last pass's share of their pairs)."""
    m = 0
    for k in range(n_changed):
        dirty_rows[m] = changed[k]
        m += 1
    for k in range(n_active):
        p = active_rows[k]
        active[p] = 0
        acc[p, 0] = 0
        acc[p, 1] = 0
        acc[p, 2] = 0
        if not dirty[p]:
            dirty[p] = 1
            dirty_rows[m] = p
            m += 1
    return m


@njit
def clear_flags(flags, rows, n):
    for k in range(n):
        flags[rows[k]] = 0


@njit
def sparse_pair_pass(scheme, params, potential, seed, step, pos, ids, radius, n_own, box, first, second,
                     fwd_lo, fwd_hi, rev_start, rev_first, dirty_rows, n_dirty, dirty, acc, active,
                     active_rows, counters, energy):
    """Every listed pair with a dirty end, once: from its first row if that is dirty, else from its
    second; each in its listed orientation (i, j) with the dense pass's arithmetic (``kernels.pair_kicks``).
    Rows that become active are listed in active_rows (returns their number)."""
    two_sided = is_two_sided(scheme)
    bx, by, bz = box[0], box[1], box[2]
    hx, hy, hz = 0.5 * bx, 0.5 * by, 0.5 * bz
    m = 0
    for t in range(n_dirty):
        p = dirty_rows[t]
        n_fwd = fwd_hi[p] - fwd_lo[p]
        r0 = rev_start[p]
        # one loop over p's pairs: first its listed pairs (p, j), then the pairs (i, p) listed from i
        for u in range(n_fwd + rev_start[p + 1] - r0):
            if u < n_fwd:
                i = p
                j = second[fwd_lo[p] + u]
            else:
                i = rev_first[r0 + u - n_fwd]
                j = p
                if dirty[i]:
                    continue          # visited from i
            dx = minimum_image(pos[i, 0] - pos[j, 0], bx, hx)
            dy = minimum_image(pos[i, 1] - pos[j, 1], by, hy)
            dz = minimum_image(pos[i, 2] - pos[j, 2], bz, hz)
            r2 = dx * dx + dy * dy + dz * dz
            sigma = radius[i] + radius[j]
            if r2 >= sigma * sigma:
                continue
            r = np.sqrt(r2)
            overlap = sigma - r
            id_i, id_j = ids[i], ids[j]
            kix, kiy, kiz, kjx, kjy, kjz = pair_kicks(scheme, two_sided, params, potential, seed, step, id_i,
                                                      id_j, dx, dy, dz, r, overlap)
            acc[i, 0] += kix
            acc[i, 1] += kiy
            acc[i, 2] += kiz
            acc[j, 0] -= kjx
            acc[j, 1] -= kjy
            acc[j, 2] -= kjz
            if energy and (i if id_i < id_j else j) < n_own:
                counters[C_PAIRS] += 1
                exact_add(counters, C_ENERGY_HI, pair_energy(overlap, potential))
            if not active[i]:
                active[i] = 1
                active_rows[m] = i
                m += 1
            if not active[j]:
                active[j] = 1
                active_rows[m] = j
                m += 1
    return m


@njit
def sparse_apply_step(scheme, params, seed, step, dim, pos, image, ids, n_own, box, acc, rows, n_rows, travel,
                      build_pos, from_build, disp_sums):
    """kernels.apply_step for a stateless scheme, over the owned rows among rows[:n_rows] (every other
    owned row has acc = 0 and does not move). Same arithmetic, row by row; resets acc of those rows.
    travel of a moved row becomes its distance from build_pos (its unwrapped position at the list build)
    if from_build, else grows by |dx| as in the dense kernel."""
    max_travel = 0.0
    max_disp = 0.0
    particle_kind = is_particle_scheme(scheme)
    for t in range(n_rows):
        i = rows[t]
        if i >= n_own:
            continue
        m = particle_multiplier(scheme, params, seed, step, ids[i]) if particle_kind else 1.0
        d2 = 0.0
        for a in range(dim):
            d = m * (acc[i, a] / FIXED_SCALE)
            acc[i, a] = 0
            if d == 0.0:
                continue
            d2 += d * d
            pos[i, a], k = wrap(pos[i, a] + d, box[a])
            image[i, a] += np.int32(k)
        if d2 > 0.0:
            dn = np.sqrt(d2)
            exact_add(disp_sums, D_ABS, dn)
            exact_add(disp_sums, D_SQ, d2 * SQ_SCALE)
            if dn > max_disp:
                max_disp = dn
            if from_build:
                # The distance from the position at the list build, |x_i - x_i^build| (not the path
                # length the dense kernel adds up): a particle rattling in its cage never asks for a
                # rebuild. Either bounds how far the particle is from where the list saw it.
                s = 0.0
                for a in range(dim):
                    e = pos[i, a] + image[i, a] * box[a] - build_pos[i, a]
                    s += e * e
                travel[i] = np.sqrt(s)
            else:
                travel[i] += dn
        if travel[i] > max_travel:
            max_travel = travel[i]
    return max_disp, max_travel


# ------------------------------------------------------------------ halo refresh of the changed rows only
# Between list builds a ghost changes only if its owner row moved, and a row moves only if it was active.
# The refresh sends, per stage of the halo exchange, the entries of the stage's row list whose row is
# flagged (owned rows that were active, ghosts that changed in an earlier stage): one float64 message
# [m, (k, x, y, z) * m], k the entry's index in the stage.

@njit
def set_flags(flags, rows, n, below, value):
    """flags[rows[t]] = value for the rows[:n] below ``below`` (the owned ones)."""
    for t in range(n):
        p = rows[t]
        if p < below:
            flags[p] = value


@njit
def pack_changed(values, rows, flags, out):
    """out = [m, (k, values[rows[k]]) for the flagged rows[k]]; returns the number of floats used."""
    w = values.shape[1]
    m = 0
    for k in range(rows.shape[0]):
        p = rows[k]
        if flags[p]:
            base = 1 + m * (w + 1)
            out[base] = k
            for a in range(w):
                out[base + 1 + a] = values[p, a]
            m += 1
    out[0] = m
    return 1 + m * (w + 1)


@njit
def store_changed(values, start, buf, flags, changed, n_changed):
    """Apply a ``pack_changed`` message to the ghost rows from ``start``: each listed row that differs is
    written, flagged and listed in changed (once). Returns the new count of changed rows."""
    w = values.shape[1]
    m = n_changed
    for t in range(int(buf[0])):
        base = 1 + t * (w + 1)
        p = start + int(buf[base])
        diff = False
        for a in range(w):
            if values[p, a] != buf[base + 1 + a]:
                diff = True
                values[p, a] = buf[base + 1 + a]
        if diff and not flags[p]:
            flags[p] = 1
            changed[m] = p
            m += 1
    return m


@njit
def unwrapped_positions(pos, image, box, n, out):
    """out[:n] = pos + image * box (the reference of the sparse step's travel, at a list build)."""
    for i in range(n):
        for a in range(3):
            out[i, a] = pos[i, a] + image[i, a] * box[a]
