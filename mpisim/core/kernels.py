"""The compiled step: one pass over overlapping pairs, one pass over owned particles.

Arrays only (never MPI): a rank calls these on its owned particles (indices < n_own) followed by its
ghosts. Two rules make the result independent of storage order and of the decomposition:

* a pair's separation is the minimum image of the two *wrapped* positions, so the rank that owns i and the
  rank that owns j compute bitwise opposite vectors, and its random draw is keyed by the two global ids;
* displacements are summed in 64-bit fixed point (``FIXED_SCALE`` = 2^40 per unit length), which is
  associative, so the order in which a particle's pairs arrive does not matter.

Global sums of floats (energy, MSD, displacements) use ``exact_add``: a two-limb fixed-point accumulator
whose MPI sum is exact (docs/parallel.md).
"""
import numpy as np

from ._jit import inline, njit, per_scheme
from .box import minimum_image, wrap
from .cells import scan_clusters, scan_rows
from .fixedpoint import FIXED_SCALE, SQ_SCALE, exact_add
from .potentials import pair_energy, pair_force
from .schemes import momentum
from .schemes._params import DIM, MOMENTUM, SPATIAL
from .schemes.dispatch import (has_isotropic_noise, has_memory_noise, has_particle_kick, has_random_direction,
                               innovation, is_particle_scheme, is_two_sided, memory_kick, noise_kick,
                               pair_coefficient, pair_coefficients, pair_kick_direction, particle_kick_direction,
                               particle_kick_size, particle_multiplier)

# Slots of disp_sums (int64[4], rank-local): exact sums of |dx| and of |dx|^2 SQ_SCALE over the last step.
D_ABS, D_SQ, N_DISP = 0, 2, 4
# Counters filled by pair_pass (rank-local; summed over ranks by the domain).
C_PAIRS, C_ENERGY_HI, C_ENERGY_LO = 0, 1, 2
N_COUNTERS = 3


@inline
def pair_random_kicks(scheme, params, seed, step, id_i, id_j, id_lo, id_hi, force):
    """``pair_kicks`` of random organization (schemes/ro_pairwise.py): the smaller id moves by
    c_lo g_lo / |g_lo|, the larger by -c_hi g_hi / |g_hi| (sizes from ``pair_coefficients``, Gaussian
    directions g from ``pair_kick_direction``; no z component in 2d); keyed by ids, so both ranks agree."""
    c_lo, c_hi = pair_coefficients(scheme, params, seed, step, id_lo, id_hi, force)
    lx, hx = pair_kick_direction(scheme, params, seed, step, id_lo, id_hi, 0)
    ly, hy = pair_kick_direction(scheme, params, seed, step, id_lo, id_hi, 1)
    lz, hz = pair_kick_direction(scheme, params, seed, step, id_lo, id_hi, 2) if params[DIM] > 2.0 else (0.0, 0.0)
    f = c_lo / np.sqrt(lx * lx + ly * ly + lz * lz)
    g = c_hi / np.sqrt(hx * hx + hy * hy + hz * hz)
    klx, kly, klz = np.int64(np.rint(f * lx * FIXED_SCALE)), np.int64(np.rint(f * ly * FIXED_SCALE)), \
        np.int64(np.rint(f * lz * FIXED_SCALE))
    khx, khy, khz = np.int64(np.rint(g * hx * FIXED_SCALE)), np.int64(np.rint(g * hy * FIXED_SCALE)), \
        np.int64(np.rint(g * hz * FIXED_SCALE))
    if id_i < id_j:                  # acc[i] += k_lo, acc[j] -= k_hi
        return klx, kly, klz, khx, khy, khz
    return -khx, -khy, -khz, -klx, -kly, -klz


@inline
def particle_random_kick_scale(scheme, params, seed, step, pid, dim):
    """u^i / |g^i| of a particle's random-organization kick (schemes/ro_individual.py): its displacement
    along axis a is this times ``particle_kick_direction(..., a)``."""
    n = 0.0
    for a in range(dim):
        g = particle_kick_direction(scheme, seed, step, pid, a)
        n += g * g
    return particle_kick_size(scheme, params, seed, step, pid) / np.sqrt(n)


@inline
def particle_factors(scheme, params, seed, step, pid, dim, moving):
    """(m, s) of one particle of a stateless scheme: m its particle multiplier (1 for a pair scheme), s the
    scale u^i / |g^i| of its random-organization kick (ro-individual, if active: ``moving``; else 0). Its
    move along axis a is ``axis_displacement``. The one home of this arithmetic: ``apply_step``, the sparse
    update and its preview (core/sparse.py) all call these two."""
    m = particle_multiplier(scheme, params, seed, step, pid) if is_particle_scheme(scheme) else 1.0
    s = 0.0
    if has_particle_kick(scheme) and moving:
        s = particle_random_kick_scale(scheme, params, seed, step, pid, dim)
    return m, s


@inline
def axis_displacement(scheme, seed, step, pid, a, pair_sum, m, s):
    """The move along axis a of a particle with factors (m, s) (``particle_factors``) and fixed-point pair
    sum ``pair_sum`` on that axis."""
    d = m * (pair_sum / FIXED_SCALE)
    if s != 0.0:
        d += s * particle_kick_direction(scheme, seed, step, pid, a)
    return d


@inline
def pair_kicks(scheme, two_sided, params, potential, seed, step, id_i, id_j, dx, dy, dz, r, overlap):
    """The kicks of one overlapping pair (i, j): (k_i, k_j), three fixed-point int64 each, to apply as
    acc[i] += k_i, acc[j] -= k_j. (dx, dy, dz) = x_i - x_j (minimum image), r its length, overlap = sigma - r;
    k_i = rint(c_i e^{ji} FIXED_SCALE) with c_i = c_j = the scheme's ``pair_coefficient``, or its two-sided
    ``pair_coefficients`` by id order (two_sided = dispatch.is_two_sided(scheme), chosen once by the
    caller); zero kicks for r = 0 or c = 0 (adding zero leaves acc bitwise as skipping it).

    The one home of the pair arithmetic: the dense pass below and the sparse pass (core/sparse.py) both
    call it, so they give bitwise the same sums. Scalars in and out on purpose: numba increments and
    decrements the reference count of every array handed to an inlined function on each call, which made
    a hook taking (pos, ids, radius, box, acc, counters) cost 60% of the dense pair pass (docs/performance.md)."""
    zero = np.int64(0)
    id_lo, id_hi = (id_i, id_j) if id_i < id_j else (id_j, id_i)
    force = pair_force(overlap, potential)
    if not two_sided:
        coef = pair_coefficient(scheme, params, seed, step, id_lo, id_hi, force)
        if coef != 0.0 and r > 0.0:
            f = coef / r
            kx = np.int64(np.rint(f * dx * FIXED_SCALE))
            ky = np.int64(np.rint(f * dy * FIXED_SCALE))
            kz = np.int64(np.rint(f * dz * FIXED_SCALE))
            return kx, ky, kz, kx, ky, kz
        return zero, zero, zero, zero, zero, zero
    elif has_random_direction(scheme):
        return pair_random_kicks(scheme, params, seed, step, id_i, id_j, id_lo, id_hi, force)
    elif r > 0.0:
        # One coefficient per particle, by id (not storage) order: both ranks of a pair agree.
        c_lo, c_hi = pair_coefficients(scheme, params, seed, step, id_lo, id_hi, force)
        c_i, c_j = (c_lo, c_hi) if id_i < id_j else (c_hi, c_lo)
        f = c_i / r
        g = c_j / r
        return (np.int64(np.rint(f * dx * FIXED_SCALE)), np.int64(np.rint(f * dy * FIXED_SCALE)),
                np.int64(np.rint(f * dz * FIXED_SCALE)), np.int64(np.rint(g * dx * FIXED_SCALE)),
                np.int64(np.rint(g * dy * FIXED_SCALE)), np.int64(np.rint(g * dz * FIXED_SCALE)))
    return zero, zero, zero, zero, zero, zero


@per_scheme
def pair_pass(scheme):
    """pair_pass(scheme, params, potential, seed, step, pos, ids, radius, n_own, box, first, second, n_pairs,
    acc, active, counters, energy): ``pair_pass_body`` compiled for one scheme."""
    @njit
    def kernel(params, potential, seed, step, pos, ids, radius, n_own, box, first, second, n_pairs, acc, active,
               counters, energy):
        pair_pass_body(scheme, params, potential, seed, step, pos, ids, radius, n_own, box, first, second,
                       n_pairs, acc, active, counters, energy)
    return kernel


# Overlapping pairs gathered per round of the pair pass: their kicks are then computed in one loop free of
# memory writes to shared rows, which the compiler turns into vector instructions (8 pairs at a time on
# AVX-512: the random draw, square root and division of a pair cost ~1.3 ns instead of ~10 ns).
PASS_BLOCK = 128


@njit
def pair_pass_body(scheme, params, potential, seed, step, pos, ids, radius, n_own, box, first, second, n_pairs,
                   acc, active, counters, energy):
    """Visit the candidate pairs of the Verlet list; for each that overlaps now add its ``pair_kicks``
    to acc, mark both particles active, and (if energy) count the pair and its energy on the rank owning
    the smaller id. acc and active must be zero on entry; ghost rows are scratch.

    In rounds of up to PASS_BLOCK overlapping pairs: (1) the overlap test, collecting the overlapping
    pairs' separations without a branch; (2) their kicks, a loop the compiler vectorizes; (3) the sums
    into acc (fixed point: the order of the additions does not matter) and the counters. The arithmetic
    of each pair is the one of ``pair_kicks``, operation for operation."""
    two_sided = is_two_sided(scheme)     # loop-invariant: the reciprocal schemes keep their one-kick body
    bx, by, bz = box[0], box[1], box[2]
    hx, hy, hz = 0.5 * bx, 0.5 * by, 0.5 * bz
    n_own_rows = np.uint64(n_own)
    geometry = np.empty((5, PASS_BLOCK))           # dx, dy, dz, r^2, sigma; then the overlap in row 3
    rows = np.empty((10, PASS_BLOCK), np.int64)    # i, j, id_i, id_j, then the six kicks
    g_dx, g_dy, g_dz, g_r2, g_sigma = geometry[0], geometry[1], geometry[2], geometry[3], geometry[4]
    g_i, g_j, g_id_i, g_id_j = rows[0], rows[1], rows[2], rows[3]
    kix, kiy, kiz, kjx, kjy, kjz = rows[4], rows[5], rows[6], rows[7], rows[8], rows[9]
    k = 0
    while k < n_pairs:
        nb = 0
        while k < n_pairs and nb < PASS_BLOCK:
            # Unsigned row numbers: numba then indexes without its negative-index fix-up.
            i = np.uint64(first[k])
            j = np.uint64(second[k])
            dx = minimum_image(pos[i, 0] - pos[j, 0], bx, hx)
            dy = minimum_image(pos[i, 1] - pos[j, 1], by, hy)
            dz = minimum_image(pos[i, 2] - pos[j, 2], bz, hz)
            r2 = dx * dx + dy * dy + dz * dz
            sigma = radius[i] + radius[j]
            g_i[nb] = i
            g_j[nb] = j
            g_id_i[nb] = ids[i]
            g_id_j[nb] = ids[j]
            g_dx[nb] = dx
            g_dy[nb] = dy
            g_dz[nb] = dz
            g_r2[nb] = r2
            g_sigma[nb] = sigma
            nb += r2 < sigma * sigma      # kept only if it overlaps
            k += 1
        for t in range(nb):
            r = np.sqrt(g_r2[t])
            overlap = g_sigma[t] - r
            kix[t], kiy[t], kiz[t], kjx[t], kjy[t], kjz[t] = pair_kicks(
                scheme, two_sided, params, potential, seed, step, g_id_i[t], g_id_j[t], g_dx[t], g_dy[t], g_dz[t],
                r, overlap)
            g_r2[t] = overlap
        for t in range(nb):
            i = np.uint64(g_i[t])
            j = np.uint64(g_j[t])
            acc[i, 0] += kix[t]
            acc[i, 1] += kiy[t]
            acc[i, 2] += kiz[t]
            acc[j, 0] -= kjx[t]
            acc[j, 1] -= kjy[t]
            acc[j, 2] -= kjz[t]
            active[i] = 1
            active[j] = 1
            if energy and (i if g_id_i[t] < g_id_j[t] else j) < n_own_rows:
                counters[C_PAIRS] += 1
                exact_add(counters, C_ENERGY_HI, pair_energy(g_r2[t], potential))


@per_scheme
def cell_pair_pass(scheme):
    """cell_pair_pass(scheme, params, potential, seed, step, pos, ids, radius, n_own, box, reach, sorted_pos,
    order, cell_of, cell_start, dims, owned_lo, owned_hi, periodic_edges, row, rows_per_block, first, second, acc,
    active, counters, energy):
    ``cell_pair_pass_body`` compiled for one scheme."""
    @njit
    def kernel(params, potential, seed, step, pos, ids, radius, n_own, box, reach, sorted_pos, order, cell_of,
               cell_start, dims, owned_lo, owned_hi, periodic_edges, row, rows_per_block, first, second, acc, active,
               counters, energy):
        return cell_pair_pass_body(scheme, params, potential, seed, step, pos, ids, radius, n_own, box, reach,
                                   sorted_pos, order, cell_of, cell_start, dims, owned_lo, owned_hi, periodic_edges,
                                   row, rows_per_block, first, second, acc, active, counters, energy)
    return kernel


@njit
def cell_pair_pass_body(scheme, params, potential, seed, step, pos, ids, radius, n_own, box, reach, sorted_pos,
                        order, cell_of, cell_start, dims, owned_lo, owned_hi, periodic_edges, row, rows_per_block,
                        first, second, acc, active, counters, energy):
    """``pair_pass`` without a Verlet list, for skin 0 (the list would be rebuilt every step): the pairs
    within ``reach`` of the cell list (``cells.scan_clusters`` on a rank whose axes all have periodic cells,
    else ``cells.scan_rows``, the list builder's search) of ``rows_per_block`` x-rows of cells at a time go
    into the small buffer (first, second), and ``pair_pass`` acts on them while they are in cache. The same
    pairs as the skin-0 list in another order, hence bitwise the same acc, active and counters (fixed-point
    sums, draws keyed by ids).

    Starts at x-row ``row`` (cz * ny + cy). Returns (row, m, block): row = dims[1] * dims[2] when done,
    else the row whose m pairs alone do not fit the buffer (the caller grows it and calls again from that
    row); block: the rows per block in use at the end (halved whenever a block did not fit)."""
    n_rows = dims[1] * dims[2]
    cap = first.shape[0]
    block = max(1, rows_per_block)
    # every axis with periodic cells (z in 2d: one cell, no ghosts): one rank, no ghosts; its search goes by
    # clusters, at less than two thirds of the cost (docs/performance.md)
    clusters = periodic_edges[0] > 0.0 and periodic_edges[1] > 0.0 and (periodic_edges[2] > 0.0 or dims[2] == 1)
    while row < n_rows:
        end = min(row + block, n_rows)
        if clusters:
            m = scan_clusters(sorted_pos, order, cell_of, reach, cell_start, dims, periodic_edges, row, end, first,
                              second)
        else:
            m = scan_rows(sorted_pos, order, n_own, reach, cell_start, dims, owned_lo, owned_hi, periodic_edges, row,
                          end, first, second)
        if m >= cap:
            if end - row == 1:
                return row, m, block
            block = max(1, (end - row) // 2)      # nothing of this block has acted yet: retry it smaller
            continue
        pair_pass_body(scheme, params, potential, seed, step, pos, ids, radius, n_own, box, first, second, m,
                       acc, active, counters, energy)
        row = end
    return row, 0, block


@njit
def msd_sum(pos, image, x0, box, n_own, dim, out):
    """Exact sum over owned particles of |x_unwrapped - x0|^2 into out[0:2]."""
    for i in range(n_own):
        s = 0.0
        for a in range(dim):
            d = pos[i, a] + image[i, a] * box[a] - x0[i, a]
            s += d * d
        exact_add(out, 0, s)


@njit
def count_active(active, n_own):
    n = 0
    for i in range(n_own):
        n += active[i]
    return n


# ------------------------------------------------------------------------ dynamics with particle state
# Schemes with per-particle state (momentum velocity, memory noise in ``aux``) or additive noise (noise
# models "memory" and "isotropic", schemes/dispatch.py) take these branches; the stateless schemes' path
# is the same arithmetic as before them.


@per_scheme
def noise_pair_pass(scheme):
    """noise_pair_pass(scheme, params, seed, step, dim, pos, ids, radius, active, n, box, first, second,
    n_pairs, aux, xi, acc): ``noise_pair_pass_body`` compiled for one scheme."""
    @njit
    def kernel(params, seed, step, dim, pos, ids, radius, active, n, box, first, second, n_pairs, aux, xi, acc):
        noise_pair_pass_body(scheme, params, seed, step, dim, pos, ids, radius, active, n, box, first, second,
                             n_pairs, aux, xi, acc)
    return kernel


@njit
def noise_pair_pass_body(scheme, params, seed, step, dim, pos, ids, radius, active, n, box, first, second,
                         n_pairs, aux, xi, acc):
    """Reciprocal memory noise: each pair that overlaps now adds sigma (eta^i - eta^j) / sqrt(2) to acc[i]
    and the opposite to acc[j] (fixed point), eta = a xi + b m (schemes/pgd.py). Needs the ghosts' aux
    (memory) refreshed this step (``Domain.forward_aux``) and ``active`` from this step's pair_pass.
    Leaves this step's draws xi of the active rows [0, n) (own and ghost) in ``xi`` for apply_step.
    Same overlap test as pair_pass."""
    # One draw per active particle and axis, not one per pair and side.
    for i in range(n):
        if active[i]:
            for a in range(dim):
                xi[i, a] = innovation(scheme, seed, step, ids[i], a)
    bx, by, bz = box[0], box[1], box[2]
    hx, hy, hz = 0.5 * bx, 0.5 * by, 0.5 * bz
    inv_sqrt2 = 1.0 / np.sqrt(2.0)
    for k in range(n_pairs):
        i = first[k]
        j = second[k]
        dx = minimum_image(pos[i, 0] - pos[j, 0], bx, hx)
        dy = minimum_image(pos[i, 1] - pos[j, 1], by, hy)
        dz = minimum_image(pos[i, 2] - pos[j, 2], bz, hz)
        sigma = radius[i] + radius[j]
        if dx * dx + dy * dy + dz * dz >= sigma * sigma:
            continue
        # Evaluate the kick of the smaller id, so both ranks of a straddling pair do the same operations.
        lo, hi = (i, j) if ids[i] < ids[j] else (j, i)
        for a in range(dim):
            e_lo = memory_kick(scheme, params, xi[lo, a], aux[lo, a])
            e_hi = memory_kick(scheme, params, xi[hi, a], aux[hi, a])
            q = np.int64(np.rint((e_lo - e_hi) * inv_sqrt2 * FIXED_SCALE))
            acc[lo, a] += q
            acc[hi, a] -= q


@per_scheme
def apply_step(scheme):
    """apply_step(scheme, params, seed, step, dim, pos, image, ids, n_own, box, acc, active, aux, xi, travel,
    disp_sums): ``apply_step_body`` compiled for one scheme."""
    @njit
    def kernel(params, seed, step, dim, pos, image, ids, n_own, box, acc, active, aux, xi, travel, disp_sums):
        return apply_step_body(scheme, params, seed, step, dim, pos, image, ids, n_own, box, acc, active, aux, xi,
                               travel, disp_sums)
    return kernel


@njit
def apply_step_body(scheme, params, seed, step, dim, pos, image, ids, n_own, box, acc, active, aux, xi, travel,
                    disp_sums):
    """x^i_{k+1} = x^i_k + displacement for owned particles; wrap into [0, L) and count images.

    The displacement is acc_i (fixed point; times the particle multiplier of a particle scheme), plus,
    for the schemes with state or additive noise (active from pair_pass; aux owned rows, updated in place):

    * momentum (params[MOMENTUM] > 0): v = beta v + g, x += v (v in aux[:, 0:3]);
    * memory noise (pgd/spgd) independent: active particles get sigma (a xi + b m), then m = xi
      (aux[:, 0:3]); inactive particles neither move by noise nor touch their memory;
    * memory noise reciprocal: the noise is already in acc and this step's draws in xi (noise_pair_pass);
      active particles set m = xi;
    * isotropic noise (langevin): every particle gets sqrt(2 alpha T) xi;
    * a particle random-organization kick (ro-individual): active particles get u^i g^i / |g^i|.

    Resets acc; adds |dx| to travel (distance since the pair list was built); adds the exact sums of |dx|
    and |dx|^2 SQ_SCALE to disp_sums (int64[4]). Returns (max |dx|, max travel).
    """
    max_travel = 0.0
    max_disp = 0.0
    beta = params[MOMENTUM]
    correlated = has_memory_noise(scheme)
    isotropic = has_isotropic_noise(scheme)
    independent = correlated and params[SPATIAL] == 0.0
    for i in range(n_own):
        m, s = particle_factors(scheme, params, seed, step, ids[i], dim, active[i])
        d2 = 0.0
        for a in range(dim):
            d = axis_displacement(scheme, seed, step, ids[i], a, acc[i, a], m, s)
            acc[i, a] = 0
            if beta > 0.0:
                d = momentum.velocity(beta, aux[i, a], d)
                aux[i, a] = d
            elif correlated:
                if active[i]:
                    if independent:
                        draw = innovation(scheme, seed, step, ids[i], a)
                        d += memory_kick(scheme, params, draw, aux[i, a])
                        aux[i, a] = draw
                    else:
                        aux[i, a] = xi[i, a]
            elif isotropic:
                d += noise_kick(scheme, params, seed, step, ids[i], a)
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
            travel[i] += dn
        if travel[i] > max_travel:
            max_travel = travel[i]
    return max_disp, max_travel


@njit
def count_moving(aux, n_own, dim):
    """Owned particles with a non-zero momentum velocity (a run with momentum is absorbed only when no
    particle overlaps and none moves)."""
    n = 0
    for i in range(n_own):
        for a in range(dim):
            if aux[i, a] != 0.0:
                n += 1
                break
    return n
