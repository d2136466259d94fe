"""Consecutive steps without a list in one compiled call: the step loop between events of a small system.

A rank alone (no exchanges, no ghosts) whose pair pass searches the cells (skin 0: the particles move so
far per step that a list would be rebuilt at every step) repeats, step after step, the same four kernels:
bin the cells (``cells.build_cells``), the cell pass (``kernels.cell_pair_pass_body``), the count of the
active rows (the absorbing check) and the update (``kernels.apply_step_body``). Between events (no
operation due) ``Simulation.run`` hands such steps to ``cell_steps``, which calls the same kernel bodies
in a loop, so the steps are bitwise the step-by-step ones, without the Python of each step (~20 us at
N = 1000: docs/performance.md, "Small systems").

The loop stops where the Python of a step would decide something else than "the same again":

- BEFORE_PASS at step ``stop`` (an event is due, or a spatial sort), or at the step after one whose
  largest displacement lets a list last (the skin choice: ``6 max_disp < max_skin``) or that left few
  particles active (``active / n_own < SPARSE_BELOW`` under run.step_kind = auto: the skin may be kept);
- AFTER_PASS at a step whose pass found no active particle (the absorbing check) or at most ``limit``
  active rows (the sparse step's list would be made): the caller finishes that step;
- GUARD after the update of a step that moved a particle more than ``step_bound`` (or not finite): the
  caller raises the numerical guard's error.
"""
import numpy as np

from ._jit import njit, per_scheme
from .cells import build_cells
from .kernels import apply_step_body, cell_pair_pass_body

BEFORE_PASS, AFTER_PASS, GUARD = 0, 1, 2


@per_scheme
def cell_steps(scheme):
    """cell_steps(scheme, params, potential, seed, step, stop, dim, pos, image, ids, radius, shift, aux, xi,
    n_own, box, reach, max_skin, step_bound, sparse, limit, below, origin, width, dims, owned_lo, owned_hi,
    cell_of, cell_start, order, sorted_pos, periodic_edges, rows_per_block, first, second, acc, active,
    travel, counters, disp_sums): ``cell_steps_body`` compiled for one scheme."""
    @njit
    def kernel(params, potential, seed, step, stop, dim, pos, image, ids, radius, shift, aux, xi, n_own, box, reach,
               max_skin, step_bound, sparse, limit, below, origin, width, dims, owned_lo, owned_hi, cell_of,
               cell_start, order, sorted_pos, periodic_edges, rows_per_block, first, second, acc, active, travel,
               counters, disp_sums):
        return cell_steps_body(scheme, params, potential, seed, step, stop, dim, pos, image, ids, radius, shift, aux,
                               xi, n_own, box, reach, max_skin, step_bound, sparse, limit, below, origin, width, dims,
                               owned_lo, owned_hi, cell_of, cell_start, order, sorted_pos, periodic_edges,
                               rows_per_block, first, second, acc, active, travel, counters, disp_sums)
    return kernel


@njit
def cell_steps_body(scheme, params, potential, seed, step, stop, dim, pos, image, ids, radius, shift, aux, xi, n_own,
                    box, reach, max_skin, step_bound, sparse, limit, below, origin, width, dims, owned_lo, owned_hi,
                    cell_of, cell_start, order, sorted_pos, periodic_edges, rows_per_block, first, second, acc,
                    active, travel, counters, disp_sums):
    """Steps ``step``, ``step + 1``, ... up to before ``stop`` of one rank without ghosts (n_own rows), each:
    the cells binned, ``acc``/``travel``/``active``/``counters`` reset (as a build and the dense pass do),
    the cell pass (energy off: no event), the active rows counted, the update. ``sparse``: the run keeps the
    sparse bookkeeping (auto), whose activity fraction and list limit stop the loop (``limit``, ``below``).

    Returns (status, step, builds, n_active, max_disp, max_travel, fraction, rows_per_block, first, second):
    status BEFORE_PASS (at ``step``: nothing of it done), AFTER_PASS (its pass done, not its update) or
    GUARD (its update done, the step not counted); builds: the cell builds (= passes) made; n_active: the
    active rows of the last pass; max_disp, max_travel, fraction: of the last update (fraction as advance()
    computes it); rows_per_block and the pair buffer (first, second: grown if a row's pairs did not fit),
    for the caller to keep."""
    n_rows = dims[1] * dims[2]
    builds = 0
    n_active = 0
    max_disp = 0.0
    max_travel = 0.0
    fraction = 1.0
    block = rows_per_block
    while step < stop:
        # the build (NeighbourList.rebuild with the cell pass): cells binned, acc and travel reset
        build_cells(pos, shift, box, n_own, n_own, origin, width, dims, owned_lo, owned_hi, cell_of, cell_start,
                    order, sorted_pos)
        for i in range(n_own):
            for a in range(acc.shape[1]):
                acc[i, a] = 0
            travel[i] = 0.0
            active[i] = 0
        for c in range(counters.shape[0]):
            counters[c] = 0
        builds += 1
        # the dense pass without a list (NeighbourList.cell_pair_pass): a row whose pairs do not fit the
        # buffer grows it (as the caller would: 1.25 times the need, plus 1024)
        row = 0
        while row < n_rows:
            row, need, block = cell_pair_pass_body(scheme, params, potential, seed, step, pos, ids, radius, n_own,
                                                   box, reach, sorted_pos, order, cell_of, cell_start, dims, owned_lo,
                                                   owned_hi, periodic_edges, row, block, first, second, acc, active,
                                                   counters, False)
            if row < n_rows:
                cap = int(need * 1.25) + 1024
                first = np.zeros(cap, dtype=first.dtype)
                second = np.zeros(cap, dtype=second.dtype)
        n_active = 0
        for i in range(n_own):
            n_active += active[i]
        if n_active == 0 or (sparse and n_active <= limit):
            return AFTER_PASS, step, builds, n_active, max_disp, max_travel, fraction, block, first, second
        # the update (Simulation.advance)
        for c in range(disp_sums.shape[0]):
            disp_sums[c] = 0
        max_disp, max_travel = apply_step_body(scheme, params, seed, step, dim, pos, image, ids, n_own, box, acc,
                                               active, aux, xi, travel, disp_sums)
        fraction = n_active / max(n_own, 1) if sparse else 1.0
        if not max_disp <= step_bound:
            return GUARD, step, builds, n_active, max_disp, max_travel, fraction, block, first, second
        step += 1
        if 6.0 * max_disp < max_skin or (sparse and fraction < below):
            break
    return BEFORE_PASS, step, builds, n_active, max_disp, max_travel, fraction, block, first, second
