"""The pair kernels for d = 4 to 6: core/kernels.py's arithmetic in loops over a compile-time width.

Positions of a d > 3 system have d columns (core/box.storage_width). The box comes in as a tuple of d
floats: numba compiles (and caches) each kernel once per tuple length, so the loops over axes have a
constant trip count and nothing branches on d per particle. The arithmetic is the three-column kernels'
operation for operation (r^2 summed axis by axis from 0, the same minimum images, kicks rounded per axis
to fixed point), so on a three-column state these kernels give bitwise the three-column kernels' sums
(tests/test_dimensions.py checks it); d <= 3 keeps the hand-unrolled kernels of core/kernels.py (speed).
The separation is recomputed in the kick loop instead of kept in a local array (no allocation per pair).
Both kernels test overlap with ``distance2``, an inlined helper that returns a scalar (numba counts the
references of every array handed to an inlined function on each call, kernels.pair_kicks; measured free
here, docs/algorithms.md "Cost per d"). Like core/kernels.py's, the kernels are compiled once per scheme
(``_jit.per_scheme``: a scheme's loop holds only its own hooks) and once per d (the tuple box).

``apply_step``, ``msd_sum`` and ``count_moving`` of core/kernels.py already loop over ``dim`` axes and
serve every d (random organization's per-particle kick included: d direction components). The sparse
step (core/sparse.py) is not offered for d > 3 (sparse.supports).
"""
import numpy as np

from ._jit import inline, njit, per_scheme
from .box import minimum_image
from .fixedpoint import FIXED_SCALE, exact_add
from .kernels import C_ENERGY_HI, C_PAIRS
from .potentials import pair_energy, pair_force
from .schemes.dispatch import (has_random_direction, innovation, is_two_sided, memory_kick, pair_coefficient,
                               pair_coefficients, pair_kick_direction)


@inline
def distance2(pos, i, j, box):
    """|x_i - x_j|^2, the minimum image summed axis by axis from 0 (kernels.pair_pass_body's r2 order)."""
    r2 = 0.0
    for a in range(len(box)):
        length = box[a]
        d = minimum_image(pos[i, a] - pos[j, a], length, 0.5 * length)
        r2 += d * d
    return r2


@per_scheme
def pair_pass(scheme):
    """pair_pass(scheme, params, potential, seed, step, pos, ids, radius, n_own, box, first, second, n_pairs,
    acc, active, counters, energy): ``pair_pass_body`` compiled for one scheme (and per d: box a tuple)."""
    @njit
    def kernel(params, potential, seed, step, pos, ids, radius, n_own, box, first, second, n_pairs, acc, active,
               counters, energy):
        pair_pass_body(scheme, params, potential, seed, step, pos, ids, radius, n_own, box, first, second,
                       n_pairs, acc, active, counters, energy)
    return kernel


@njit
def pair_pass_body(scheme, params, potential, seed, step, pos, ids, radius, n_own, box, first, second, n_pairs,
                   acc, active, counters, energy):
    """kernels.pair_pass with box a tuple of d floats (compiled once per d): the same overlap test,
    coefficients (kernels.pair_kicks's) and fixed-point sums, axis by axis. Random organization's pair
    kicks (kernels.pair_random_kicks) draw len(box) = d direction components per particle of the pair:
    the smaller id moves by c_lo g_lo / |g_lo|, the larger by -c_hi g_hi / |g_hi|."""
    two_sided = is_two_sided(scheme)
    random_direction = has_random_direction(scheme)
    # a pair's two Gaussian directions (random organization), one row per kernel call, not per pair
    g_lo = np.empty(len(box))
    g_hi = np.empty(len(box))
    for k in range(n_pairs):
        i = first[k]
        j = second[k]
        r2 = distance2(pos, i, j, box)
        sigma = radius[i] + radius[j]
        if r2 >= sigma * sigma:
            continue
        r = np.sqrt(r2)
        overlap = sigma - r
        id_i, id_j = ids[i], ids[j]
        id_lo, id_hi = (id_i, id_j) if id_i < id_j else (id_j, id_i)
        force = pair_force(overlap, potential)
        if not two_sided:
            c_i = pair_coefficient(scheme, params, seed, step, id_lo, id_hi, force)
            c_j = c_i
        else:
            # One coefficient per particle, by id (not storage) order: both ranks of a pair agree.
            c_lo, c_hi = pair_coefficients(scheme, params, seed, step, id_lo, id_hi, force)
            c_i, c_j = (c_lo, c_hi) if id_i < id_j else (c_hi, c_lo)
        if two_sided and random_direction:
            n_lo = 0.0
            n_hi = 0.0
            for a in range(len(box)):
                g_lo[a], g_hi[a] = pair_kick_direction(scheme, params, seed, step, id_lo, id_hi, a)
                n_lo += g_lo[a] * g_lo[a]
                n_hi += g_hi[a] * g_hi[a]
            f = c_lo / np.sqrt(n_lo)
            g = c_hi / np.sqrt(n_hi)
            lo, hi = (i, j) if id_i < id_j else (j, i)
            for a in range(len(box)):
                acc[lo, a] += np.int64(np.rint(f * g_lo[a] * FIXED_SCALE))
                acc[hi, a] -= np.int64(np.rint(g * g_hi[a] * FIXED_SCALE))
        elif r > 0.0 and (two_sided or c_i != 0.0):
            f = c_i / r
            g = c_j / r
            for a in range(len(box)):
                length = box[a]
                d = minimum_image(pos[i, a] - pos[j, a], length, 0.5 * length)
                acc[i, a] += np.int64(np.rint(f * d * FIXED_SCALE))
                acc[j, a] -= np.int64(np.rint(g * d * FIXED_SCALE))
        active[i] = 1
        active[j] = 1
        if energy and (i if id_i < id_j else j) < n_own:
            counters[C_PAIRS] += 1
            exact_add(counters, C_ENERGY_HI, pair_energy(overlap, potential))


@per_scheme
def noise_pair_pass(scheme):
    """noise_pair_pass(scheme, params, seed, step, dim, pos, ids, radius, active, n, box, first, second,
    n_pairs, aux, xi, acc): ``noise_pair_pass_body`` compiled for one scheme (and per d: box a tuple)."""
    @njit
    def kernel(params, seed, step, dim, pos, ids, radius, active, n, box, first, second, n_pairs, aux, xi, acc):
        noise_pair_pass_body(scheme, params, seed, step, dim, pos, ids, radius, active, n, box, first, second,
                             n_pairs, aux, xi, acc)
    return kernel


@njit
def noise_pair_pass_body(scheme, params, seed, step, dim, pos, ids, radius, active, n, box, first, second,
                         n_pairs, aux, xi, acc):
    """kernels.noise_pair_pass with box a tuple of d floats (compiled once per d)."""
    for i in range(n):
        if active[i]:
            for a in range(dim):
                xi[i, a] = innovation(scheme, seed, step, ids[i], a)
    inv_sqrt2 = 1.0 / np.sqrt(2.0)
    for k in range(n_pairs):
        i = first[k]
        j = second[k]
        r2 = distance2(pos, i, j, box)
        sigma = radius[i] + radius[j]
        if r2 >= sigma * sigma:
            continue
        lo, hi = (i, j) if ids[i] < ids[j] else (j, i)
        for a in range(dim):
            e_lo = memory_kick(scheme, params, xi[lo, a], aux[lo, a])
            e_hi = memory_kick(scheme, params, xi[hi, a], aux[hi, a])
            q = np.int64(np.rint((e_lo - e_hi) * inv_sqrt2 * FIXED_SCALE))
            acc[lo, a] += q
            acc[hi, a] -= q
