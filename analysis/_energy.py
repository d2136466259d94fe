"""Serial numba kernels for the total pair energy V(X) = sum_{i<j} U(r_ij) (paper Eq. 3 and variants).

This is the fallback for ``mpisim.energy.total_energy`` (same signature) while the simulator does
not provide it, plus a neighbour-pair list and a perturbed-energy kernel used by the flatness
measurement (:mod:`analysis.flatness`).

Potentials, with sigma_ij = R_i + R_j and overlap delta = sigma_ij - r > 0 (else U = 0); lengths in
diameters:

======== ======================
linear   U = delta / 2          (paper Eq. 3)
harmonic U = delta^2 / 2
hertzian U = (2/5) delta^(5/2)
======== ======================

Pairs are found with a cell list (cells at least as wide as the cut-off; all pairs directly when
the box holds fewer than 3 cells per axis). The pair list uses a fixed-size buffer that reports
overflow; the Python wrapper enlarges it and retries.

Examples
--------
>>> import numpy as np
>>> x = np.array([[0.0, 0.0, 0.0], [0.8, 0.0, 0.0]])
>>> total_energy(x, np.full(2, 0.5), np.full(3, 10.0), "linear")   # (1 - 0.8) / 2
0.09999999999999998
"""
from __future__ import annotations

import itertools
import math

import numba
import numpy as np

from .errors import AnalysisError

POTENTIALS = {"linear": 0, "harmonic": 1, "hertzian": 2}


def potential_code(potential: str) -> int:
    try:
        return POTENTIALS[potential]
    except KeyError:
        raise AnalysisError(f"unknown potential {potential!r}: choose from {', '.join(POTENTIALS)}") from None


@numba.njit(cache=True, nogil=True, inline="always")
def _u(overlap, code):
    if code == 0:
        return 0.5 * overlap
    if code == 1:
        return 0.5 * overlap * overlap
    return 0.4 * overlap * overlap * math.sqrt(overlap)


def pair_u0(potential: str, sigma: float = 1.0) -> float:
    """U(r = 0) = U at full overlap delta = sigma (the paper's energy scale U_0)."""
    code = potential_code(potential)
    return float(_u(sigma, code))


@numba.njit(cache=True, nogil=True)
def _cells(pos, box, ncell):
    n, d = pos.shape
    cell_of = np.empty(n, dtype=np.int64)
    total = 1
    for a in range(d):
        total *= ncell[a]
    head = -np.ones(total, dtype=np.int64)
    nxt = -np.ones(n, dtype=np.int64)
    for i in range(n):
        c = 0
        for a in range(d):
            x = pos[i, a] - math.floor(pos[i, a] / box[a]) * box[a]
            ci = int(x / box[a] * ncell[a])
            if ci >= ncell[a]:
                ci = ncell[a] - 1
            c = c * ncell[a] + ci
        cell_of[i] = c
        nxt[i] = head[c]
        head[c] = i
    return cell_of, head, nxt


@numba.njit(cache=True, nogil=True)
def _min_image_dist2(pos, disp, i, j, box):
    r2 = 0.0
    for a in range(pos.shape[1]):
        dx = (pos[j, a] + disp[j, a]) - (pos[i, a] + disp[i, a])
        dx -= box[a] * round(dx / box[a])
        r2 += dx * dx
    return r2


@numba.njit(cache=True, nogil=True)
def _neighbor_cell(c, off, ncell):
    d = ncell.shape[0]
    # decode c into per-axis indices, shift, wrap, re-encode
    idx = np.empty(d, dtype=np.int64)
    rem = c
    for a in range(d - 1, -1, -1):
        idx[a] = rem % ncell[a]
        rem //= ncell[a]
    out = 0
    for a in range(d):
        v = (idx[a] + off[a]) % ncell[a]
        out = out * ncell[a] + v
    return out


@numba.njit(cache=True, nogil=True)
def _energy_cells(pos, disp, radii, box, code, ncell, offsets):
    p = pos + disp
    cell_of, head, nxt = _cells(p, box, ncell)
    n = pos.shape[0]
    e = 0.0
    nbrs = np.empty(offsets.shape[0], dtype=np.int64)
    for i in range(n):
        for o in range(offsets.shape[0]):
            nbrs[o] = _neighbor_cell(cell_of[i], offsets[o], ncell)
        for o in range(offsets.shape[0]):
            j = head[nbrs[o]]
            while j >= 0:
                if j > i:
                    s = radii[i] + radii[j]
                    r2 = _min_image_dist2(pos, disp, i, j, box)
                    if r2 < s * s:
                        e += _u(s - math.sqrt(r2), code)
                j = nxt[j]
    return e


@numba.njit(cache=True, nogil=True)
def _energy_allpairs(pos, disp, radii, box, code):
    n = pos.shape[0]
    e = 0.0
    for i in range(n):
        for j in range(i + 1, n):
            s = radii[i] + radii[j]
            r2 = _min_image_dist2(pos, disp, i, j, box)
            if r2 < s * s:
                e += _u(s - math.sqrt(r2), code)
    return e


@numba.njit(cache=True, nogil=True)
def _pairs_cells(pos, radii, box, skin, ncell, offsets, out, use_cells):
    """Fill ``out`` [cap, 2] with pairs i < j at r < R_i + R_j + skin; returns count (> cap: overflow)."""
    n = pos.shape[0]
    zero = np.zeros_like(pos)
    cap = out.shape[0]
    cnt = 0
    if use_cells:
        cell_of, head, nxt = _cells(pos, box, ncell)
        nbrs = np.empty(offsets.shape[0], dtype=np.int64)
        for i in range(n):
            for o in range(offsets.shape[0]):
                nbrs[o] = _neighbor_cell(cell_of[i], offsets[o], ncell)
            for o in range(offsets.shape[0]):
                j = head[nbrs[o]]
                while j >= 0:
                    if j > i:
                        c = radii[i] + radii[j] + skin
                        if _min_image_dist2(pos, zero, i, j, box) < c * c:
                            if cnt < cap:
                                out[cnt, 0] = i
                                out[cnt, 1] = j
                            cnt += 1
                    j = nxt[j]
    else:
        for i in range(n):
            for j in range(i + 1, n):
                c = radii[i] + radii[j] + skin
                if _min_image_dist2(pos, zero, i, j, box) < c * c:
                    if cnt < cap:
                        out[cnt, 0] = i
                        out[cnt, 1] = j
                    cnt += 1
    return cnt


@numba.njit(cache=True, nogil=True)
def pair_list_energy(pos, disp, radii, box, pairs, code):
    """V of ``pos + disp`` counting only the listed pairs (exact if no other pair can overlap)."""
    e = 0.0
    for q in range(pairs.shape[0]):
        i = pairs[q, 0]
        j = pairs[q, 1]
        s = radii[i] + radii[j]
        r2 = _min_image_dist2(pos, disp, i, j, box)
        if r2 < s * s:
            e += _u(s - math.sqrt(r2), code)
    return e


def _grid(box, cutoff, d):
    ncell = np.maximum(np.floor(box / cutoff).astype(np.int64), 1)
    use_cells = bool(np.all(ncell >= 3))
    offsets = np.array(list(itertools.product((-1, 0, 1), repeat=d)), dtype=np.int64)
    return ncell, offsets, use_cells


def _check(positions, radii, box):
    pos = np.ascontiguousarray(positions, dtype=np.float64)
    rad = np.ascontiguousarray(radii, dtype=np.float64)
    b = np.ascontiguousarray(box, dtype=np.float64)
    if pos.ndim != 2 or rad.shape != (pos.shape[0],) or b.shape != (pos.shape[1],):
        raise AnalysisError("positions must be [N, d], radii [N] and box [d]")
    return pos, rad, b


def total_energy(positions, radii, box, potential: str) -> float:
    """Total pair energy V = sum_{i<j} U(r_ij) of a periodic configuration.

    Parameters
    ----------
    positions : array [N, d] float64 (diameters; any image)
    radii : array [N] float64
    box : array [d] float64
    potential : {"linear", "harmonic", "hertzian"}
    """
    pos, rad, b = _check(positions, radii, box)
    code = potential_code(potential)
    if pos.shape[0] < 2:
        return 0.0
    cutoff = 2.0 * rad.max()
    ncell, offsets, use_cells = _grid(b, cutoff, pos.shape[1])
    zero = np.zeros_like(pos)
    if use_cells:
        return float(_energy_cells(pos, zero, rad, b, code, ncell, offsets))
    return float(_energy_allpairs(pos, zero, rad, b, code))


def pair_list(positions, radii, box, skin: float) -> np.ndarray:
    """Pairs i < j with r_ij < R_i + R_j + skin, int64 [npairs, 2] (cell list, overflow-retry)."""
    pos, rad, b = _check(positions, radii, box)
    cutoff = 2.0 * rad.max() + skin
    if np.any(b < 2.0 * cutoff):
        raise AnalysisError("box too small for the pair-list cut-off (need L >= 2 (2R + skin))")
    ncell, offsets, use_cells = _grid(b, cutoff, pos.shape[1])
    cap = max(16, 8 * pos.shape[0])
    while True:
        out = np.empty((cap, 2), dtype=np.int64)
        cnt = _pairs_cells(pos, rad, b, float(skin), ncell, offsets, out, use_cells)
        if cnt <= cap:
            return out[:cnt].copy()
        cap = int(cnt * 1.2) + 16
