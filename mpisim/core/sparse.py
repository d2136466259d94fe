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

from ._jit import njit, per_scheme
from .box import minimum_image, wrap
from .fixedpoint import SQ_SCALE, exact_add
from .potentials import pair_energy
from .kernels import C_ENERGY_HI, C_PAIRS, D_ABS, D_SQ, axis_displacement, pair_kicks, particle_factors
from .schemes import BY_ID
from .schemes.dispatch import has_particle_kick, is_two_sided

# Scheme ids whose step the sparse kernels reproduce: no noise model (a particle moves only if it
# overlaps); with momentum (DynamicsParams.momentum) a scheme stays dense.
SPARSE_SCHEMES = tuple(s.id for s in BY_ID if not s.noise)
# float32 build positions (sparse_apply_step): the travel bound's slack per unit of coordinate
BUILD_POS_SLACK = 2.0 ** -22


def supports(dynamics, dim=3):
    """Whether a dynamics (core.dynamics.DynamicsParams) can take the sparse step: a stateless scheme
    without momentum (with momentum a particle keeps moving after its overlaps are gone), in d <= 3 (the
    sparse kernels have the three-column pair arithmetic; d = 4 to 6 take the dense step)."""
    return dynamics.scheme in SPARSE_SCHEMES and not dynamics.momentum and dim <= 3


class SparseStep:
    """Rank-local bookkeeping of the sparse step: the rows active at the last pass and, while passes are
    sparse, the pair list's per-row adjacency.

    Memory by use (docs/performance.md, "Memory"): while many rows are active (more than the ``limit``
    given to ``start``) the active rows are only counted and nothing is held. While few are: the row lists
    sized by use (4 bytes per listed row), a flag per row (1 byte), the reverse offsets (4 bytes per row)
    and, when the update measures travel from the list build, the build positions as float32 (12 bytes per
    owned row). The rest is borrowed from arrays idle between list builds: the forward runs live in the
    cell list's ``cell_of`` and ``order``, the reverse offsets in its ``cell_start`` (when it is long
    enough), the reverse adjacency in the pair list's ``first`` (given back by ``release`` before a dense
    pass; a build overwrites all four anyway).
    """

    def __init__(self):
        self.fwd_lo = None        # pairs k with first[k] == p: fwd_lo[p] <= k < fwd_hi[p] (borrowed, int32)
        self.fwd_hi = None
        self.rev_first = None     # rows q with (q, p) listed: rev_first[rev_start[p]:rev_start[p + 1]]
        self.rev_start = np.zeros(0, dtype=np.int32)
        self.rev_start_borrowed = False                  # rev_start is the cell list's (index's room)
        self.n_rows = 0                                  # rows of the indexed list
        self.indexed = False                             # rev_first (the pair list's first) holds the index
        self.dirty = np.zeros(0, dtype=np.uint8)         # flag per row, zero between steps
        self.dirty_rows = np.zeros(0, dtype=np.int32)
        self.active_rows = np.zeros(0, dtype=np.int32)   # rows (owned and ghost) active at the last pass
        self.n_active = 0
        self.n_active_own = 0                            # owned rows among them: the rank's activity count
        self.listed = False                              # active_rows lists them (else only counted)
        self.changed = np.zeros(0, dtype=np.int32)       # ghost rows whose position the halo refresh changed
        self.n_changed = 0
        self.build_pos = np.zeros((0, 3), dtype=np.float32)   # unwrapped positions at the list build

    @staticmethod
    def _grown(arr, n, keep=0, headroom=1.25):
        """arr, or a copy with room for n entries (and headroom) whose first ``keep`` entries are arr's.
        The arrays sized by the rank's rows take 2%: their size changes only at list builds."""
        if arr.shape[0] >= n:
            return arr
        out = np.zeros((int(n * headroom) + 16,) + arr.shape[1:], dtype=arr.dtype)
        out[:keep] = arr[:keep]
        return out

    def index(self, first, second, n_pairs, n_rows, fwd_lo, fwd_hi, room=None):
        """Per-row adjacency of the pair list (first, second)[:n_pairs] over rows [0, n_rows). O(pairs).
        fwd_lo, fwd_hi: int32 arrays of at least n_rows entries, free until the next list build (the cell
        list's). Afterwards ``first`` holds the reverse adjacency: ``release(first)`` before a dense pass.
        room: an int32 array free until the next list build (the cell list's cell_start); the reverse
        offsets live there if it has n_rows + 1 entries, else in an array of their own."""
        if fwd_lo.shape[0] < n_rows or fwd_hi.shape[0] < n_rows:
            raise ValueError("SparseStep.index: fwd_lo and fwd_hi need a slot per row")
        if room is not None and room.shape[0] > n_rows:
            self.rev_start = room
            self.rev_start_borrowed = True
        else:
            if self.rev_start_borrowed:
                self.rev_start = np.zeros(0, dtype=np.int32)
            self.rev_start = self._grown(self.rev_start, n_rows + 1, headroom=1.02)
            self.rev_start_borrowed = False
        index_pairs(first, second, n_pairs, n_rows, fwd_lo, fwd_hi, self.rev_start)
        self.fwd_lo, self.fwd_hi, self.rev_first, self.n_rows = fwd_lo, fwd_hi, first, n_rows
        self.indexed = True

    def forget_index(self):
        """A list build replaced the pair and cell lists: the index is void (and holds none of their arrays)."""
        self.indexed = False
        if self.rev_start_borrowed:
            self.rev_start = np.zeros(0, dtype=np.int32)
            self.rev_start_borrowed = False

    def release(self, first):
        """Give the pair list its ``first`` back (rebuilt from the forward runs; O(pairs))."""
        if self.indexed:
            restore_first(self.fwd_lo, self.fwd_hi, self.n_rows, first)
            self.indexed = False

    def start(self, active, n_rows, n_own, limit):
        """Take the active rows of a dense pass (flags active[:n_rows]) as the sparse step's starting set:
        counted always, listed if at most ``limit`` (a sparse pass needs the list)."""
        self.n_active, self.n_active_own = count_flags(active, n_rows, n_own)
        if self.n_changed:
            clear_flags(self.dirty, self.changed, self.n_changed)    # a halo refresh may have noted some
        self.n_changed = 0
        self.listed = self.n_active <= limit
        if self.listed:
            self.dirty = self._grown(self.dirty, n_rows, headroom=1.02)
            self.active_rows = self._grown(self.active_rows, self.n_active)
            collect_flags(active, n_rows, self.active_rows)

    def reserve_changed(self, n):
        """Room for n changed ghost rows (the halo refresh, before it stores a message)."""
        self.changed = self._grown(self.changed, n, keep=self.n_changed)

    def pair_pass(self, scheme, params, potential, seed, step, pos, ids, radius, n_own, box, first, second,
                  acc, active, counters, energy):
        """The sparse pair pass at ``step``: the dense ``kernels.pair_pass``'s acc, active and counters,
        from the rows active at the last pass (listed) and the ghosts ``changed`` since. Needs ``index``.
        Expects acc and active as the last pass and update left them (reset here where they were written).
        ``first`` is unused (it holds the reverse adjacency), kept for the signature's symmetry."""
        self.dirty_rows = self._grown(self.dirty_rows, self.n_changed + self.n_active)
        n_dirty = mark_dirty(self.active_rows, self.n_active, self.changed, self.n_changed, self.dirty,
                             self.dirty_rows, active, acc)
        m, m_own = sparse_pair_pass(scheme, params, potential, seed, step, pos, ids, radius, n_own, box,
                                    second, self.fwd_lo, self.fwd_hi, self.rev_start, self.rev_first,
                                    self.dirty_rows, n_dirty, self.dirty, acc, active, self.active_rows,
                                    counters, energy)
        clear_flags(self.dirty, self.dirty_rows, n_dirty)
        if m > self.active_rows.shape[0]:
            # more rows became active than the list had room for: list them from the (complete) flags
            self.active_rows = self._grown(self.active_rows, m)
            collect_flags(active, self.n_rows, self.active_rows)
        self.n_active, self.n_active_own = m, m_own
        self.n_changed = 0
        return m

    def save_build_positions(self, pos, image, box, n_own):
        """Keep the owned rows' unwrapped positions at a list build (float32; the update's travel)."""
        self.build_pos = self._grown(self.build_pos, n_own, headroom=1.02)
        unwrapped_positions(pos, image, box, n_own, self.build_pos)

    def apply(self, scheme, params, seed, step, dim, pos, image, ids, n_own, box, acc, travel, from_build,
              disp_sums):
        """The dense ``kernels.apply_step`` over the owned active rows only. Returns (max |dx|, the largest
        travel among the rows it moved); the caller keeps the running maximum since the list was built.
        from_build: travel is the distance from ``save_build_positions``' (else the path length)."""
        return sparse_apply_step(scheme, params, seed, step, dim, pos, image, ids, n_own, box, acc,
                                 self.active_rows, self.n_active, travel, self.build_pos, from_build, disp_sums)

    @property
    def nbytes(self):
        """Bytes held (not those borrowed from the cell and pair lists)."""
        own = (self.dirty, self.dirty_rows, self.active_rows, self.changed, self.build_pos)
        return sum(a.nbytes for a in own) + (0 if self.rev_start_borrowed else self.rev_start.nbytes)


@njit
def index_pairs(first, second, n_pairs, n_rows, fwd_lo, fwd_hi, rev_start):
    """fwd_lo/fwd_hi: the range of pairs whose first row is p (the list builder emits a row's pairs as
    one run; checked); rev_start and first: counting sort of the first rows by second row, written over
    ``first`` (each pair's first row is known from the runs once they are found)."""
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
    for p in range(n_rows):
        for k in range(fwd_lo[p], fwd_hi[p]):
            q = second[k]
            first[rev_start[q]] = p
            rev_start[q] += 1
    for p in range(n_rows, 0, -1):
        rev_start[p] = rev_start[p - 1]
    rev_start[0] = 0


@njit
def restore_first(fwd_lo, fwd_hi, n_rows, first):
    """Undo index_pairs' use of ``first``: each pair's first row again."""
    for p in range(n_rows):
        for k in range(fwd_lo[p], fwd_hi[p]):
            first[k] = p


@njit
def count_flags(flags, n, n_own):
    """(set flags among [0, n), among [0, n_own))."""
    m = 0
    m_own = 0
    for p in range(n):
        if flags[p]:
            m += 1
            if p < n_own:
                m_own += 1
    return m, m_own


@njit
def collect_flags(flags, n, out):
    m = 0
    for p in range(n):
        if flags[p]:
            out[m] = p
            m += 1
    return m


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


@per_scheme
def sparse_pair_pass(scheme):
    """sparse_pair_pass(scheme, params, potential, seed, step, pos, ids, radius, n_own, box, second, fwd_lo,
    fwd_hi, rev_start, rev_first, dirty_rows, n_dirty, dirty, acc, active, active_rows, counters, energy):
    ``sparse_pair_pass_body`` compiled for one scheme (``_jit.per_scheme``)."""
    @njit
    def kernel(params, potential, seed, step, pos, ids, radius, n_own, box, second, fwd_lo, fwd_hi, rev_start,
               rev_first, dirty_rows, n_dirty, dirty, acc, active, active_rows, counters, energy):
        return sparse_pair_pass_body(scheme, params, potential, seed, step, pos, ids, radius, n_own, box, second,
                                     fwd_lo, fwd_hi, rev_start, rev_first, dirty_rows, n_dirty, dirty, acc,
                                     active, active_rows, counters, energy)
    return kernel


@njit
def sparse_pair_pass_body(scheme, params, potential, seed, step, pos, ids, radius, n_own, box, second,
                          fwd_lo, fwd_hi, rev_start, rev_first, dirty_rows, n_dirty, dirty, acc, active,
                          active_rows, counters, energy):
    """Every listed pair with a dirty end, once: from its first row if that is dirty, else from its
    second; each in its listed orientation (i, j) with the dense pass's arithmetic (``kernels.pair_kicks``).
    Rows that become active are flagged in active and listed in active_rows while it has room. Returns
    (their number, the owned ones among them); a number above active_rows' length: the list is short."""
    two_sided = is_two_sided(scheme)
    cap = active_rows.shape[0]
    m_own = 0
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
                if m < cap:
                    active_rows[m] = i
                m += 1
                m_own += i < n_own
            if not active[j]:
                active[j] = 1
                if m < cap:
                    active_rows[m] = j
                m += 1
                m_own += j < n_own
    return m, m_own


@per_scheme
def sparse_apply_step(scheme):
    """sparse_apply_step(scheme, params, seed, step, dim, pos, image, ids, n_own, box, acc, rows, n_rows,
    travel, build_pos, from_build, disp_sums): ``sparse_apply_step_body`` compiled for one scheme."""
    @njit
    def kernel(params, seed, step, dim, pos, image, ids, n_own, box, acc, rows, n_rows, travel, build_pos,
               from_build, disp_sums):
        return sparse_apply_step_body(scheme, params, seed, step, dim, pos, image, ids, n_own, box, acc, rows,
                                      n_rows, travel, build_pos, from_build, disp_sums)
    return kernel


@njit
def sparse_apply_step_body(scheme, params, seed, step, dim, pos, image, ids, n_own, box, acc, rows, n_rows,
                           travel, build_pos, from_build, disp_sums):
    """kernels.apply_step for a stateless scheme, over the owned rows among rows[:n_rows] (every other
    owned row has acc = 0 and does not move). Same arithmetic, row by row; resets acc of those rows.
    travel of a moved row becomes its distance from build_pos (its unwrapped position at the list build)
    if from_build, else grows by |dx| as in the dense kernel."""
    max_travel = 0.0
    max_disp = 0.0
    for t in range(n_rows):
        i = rows[t]
        if i >= n_own:
            continue
        # every listed row is active
        m, s = particle_factors(scheme, params, seed, step, ids[i], dim, True)
        d2 = 0.0
        for a in range(dim):
            d = axis_displacement(scheme, seed, step, ids[i], a, acc[i, a], m, s)
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
                # rebuild. Either bounds how far the particle is from where the list saw it. build_pos is
                # float32: each coordinate within 2^-24 of its own size of the exact one, so adding
                # 2^-22 sum_a |build_pos_a| keeps the value an upper bound (~1e-5 at 50 diameters).
                dist2 = 0.0
                slack = 0.0
                for a in range(dim):
                    b = np.float64(build_pos[i, a])
                    e = pos[i, a] + image[i, a] * box[a] - b
                    dist2 += e * e
                    slack += abs(b)
                travel[i] = np.sqrt(dist2) + slack * BUILD_POS_SLACK
            else:
                travel[i] += dn
        if travel[i] > max_travel:
            max_travel = travel[i]
    return max_disp, max_travel


@per_scheme
def preview_step(scheme):
    """preview_step(scheme, params, seed, step, dim, pos, image, ids, n_own, box, acc, active, rows, n_rows,
    every_row, travel, build_pos, from_build): ``preview_step_body`` compiled for one scheme."""
    @njit
    def kernel(params, seed, step, dim, pos, image, ids, n_own, box, acc, active, rows, n_rows, every_row, travel,
               build_pos, from_build):
        return preview_step_body(scheme, params, seed, step, dim, pos, image, ids, n_own, box, acc, active, rows,
                                 n_rows, every_row, travel, build_pos, from_build)
    return kernel


@njit
def preview_step_body(scheme, params, seed, step, dim, pos, image, ids, n_own, box, acc, active, rows, n_rows,
                      every_row, travel, build_pos, from_build):
    """What this step's update will report, before it moves anything: (max |dx|, the largest travel of
    the rows it will move, or of every owned row if every_row). The same arithmetic
    (``kernels.particle_factors``, ``axis_displacement``) as ``sparse_apply_step`` over rows[:n_rows]
    (every_row False; all active) or ``kernels.apply_step`` for a stateless scheme over all owned rows
    (every_row True; active from the pass; travel + |dx|), plus 1e-9 (the travel bound of a moved row then
    also covers the rounding of the wrap that the update does first). Reads only: lets the step reduce its rebuild vote together with the absorbing check, before
    the operations (one collective)."""
    max_travel = 0.0
    max_disp = 0.0
    random_kick = has_particle_kick(scheme)
    n = n_own if every_row else n_rows
    for t in range(n):
        i = t if every_row else rows[t]
        if i >= n_own:
            continue
        d2 = 0.0
        moving = active[i] != 0 if every_row else True
        if acc[i, 0] != 0 or acc[i, 1] != 0 or acc[i, 2] != 0 or (random_kick and moving):
            m, s = particle_factors(scheme, params, seed, step, ids[i], dim, moving)
            for a in range(dim):
                d = axis_displacement(scheme, seed, step, ids[i], a, acc[i, a], m, s)
                d2 += d * d
        if d2 > 0.0:
            dn = np.sqrt(d2)
            if dn > max_disp:
                max_disp = dn
            if from_build and not every_row:
                dist2 = 0.0
                slack = 0.0
                for a in range(dim):
                    b = np.float64(build_pos[i, a])
                    e = pos[i, a] + axis_displacement(scheme, seed, step, ids[i], a, acc[i, a], m, s) + \
                        image[i, a] * box[a] - b
                    dist2 += e * e
                    slack += abs(b)
                tr = np.sqrt(dist2) + slack * BUILD_POS_SLACK + 1e-9
            else:
                tr = travel[i] + dn + 1e-9
        else:
            tr = travel[i] if every_row else 0.0
        if tr > max_travel:
            max_travel = tr
    return max_disp, max_travel


# ------------------------------------------------------------------ halo refresh of the changed rows only
# Between list builds a ghost changes only if its owner row moved, and a row moves only if it was active.
# The refresh sends, per stage of the halo exchange, the entries of the stage's row list whose row is
# flagged (owned rows that were active, ghosts that changed in an earlier stage): one float64 message
# [m, (k, x, y, z) * m], k the entry's index in the stage. A rank whose active rows are not listed (many
# active: its next pass is dense) sends every entry and records nothing; the receivers cannot tell.

@njit
def set_flags(flags, rows, n, below, value):
    """flags[rows[t]] = value for the rows[:n] below ``below`` (the owned ones)."""
    for t in range(n):
        p = rows[t]
        if p < below:
            flags[p] = value


@njit
def pack_changed(values, rows, flags, out, everything):
    """out = [m, (k, values[rows[k]]) for the flagged rows[k] (every row if everything)]; returns the
    number of floats used."""
    w = values.shape[1]
    m = 0
    for k in range(rows.shape[0]):
        p = rows[k]
        if everything or flags[p]:
            base = 1 + m * (w + 1)
            out[base] = k
            for a in range(w):
                out[base + 1 + a] = values[p, a]
            m += 1
    out[0] = m
    return 1 + m * (w + 1)


@njit
def store_changed(values, start, buf, flags, changed, n_changed, record):
    """Apply a ``pack_changed`` message to the ghost rows from ``start``; if record, each listed row that
    differs is also flagged and listed in changed (once; room for buf[0] more). Returns the new count of
    changed rows."""
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
        if record and diff and not flags[p]:
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
