r"""S(k) kernels: the wave vectors of a periodic box, the sums over particles, bins and shells
(docs/structure-factor.md; paper Fig. S2). Arrays in, arrays out: no MPI, nothing above mpisim.core.

Definition: for N particles in a periodic box with edges L_a,

    S(k) = |sum_j exp(i k . x_j)|^2 / N,   k = 2 pi (n_1 / L_1, ..., n_d / L_d),  n integer,

for every k with 0 < |k| <= k_max (k = 0 is excluded), then averaged over the k in each radial bin
[k_lo, k_hi) of |k| (the last bin also takes |k| = k_max). Because S(-k) = S(k), only a half space of
k is summed (the first non-zero n_a positive), which leaves every bin average unchanged;
``octant=True`` sums instead the k with all n_a >= 0, the set freud's
``freud.diffraction.StaticStructureFactorDirect`` samples.

* :func:`sofk_sums`: float sums. Per particle it computes z_a = exp(2 pi i x_a / L_a) once per axis,
  its powers by recurrence (negative n by conjugation), and each term as a product of d table entries
  (no trigonometric call per term). Additive over particles; used by ``analysis``.
* :func:`sofk_sums_fixed`: the same terms, each rounded to 2^-52 and added in int64 limbs, so the sum
  over any split of the particles (MPI ranks) is the same number; used by ``mpisim.parallel.sofk``.
* :func:`nufft_amplitudes`, :func:`nufft_sums`: the sums by one type-1 non-uniform FFT (finufft), to
  a tolerance; the way to reach large k_max (cost ~ N + M log M instead of N x nk).

Every function raises ValueError on bad input.
"""
import math

import numba
import numpy as np
from numba import prange

from ._jit import inline, njit_parallel

TWO_PI = 2.0 * math.pi
MAX_DIM = 6                              # d = 2..6; d > 3: direct sums only (finufft stops at 3d)
DEFAULT_SHELLS = 8                       # k_max = 0 means 2 pi 8 / min(L)


def default_k_max(box, dim):
    """2 pi * DEFAULT_SHELLS / min(L_a): the small-k range of Fig. S2."""
    return 2.0 * math.pi * DEFAULT_SHELLS / float(np.min(np.asarray(box, dtype=np.float64)[:dim]))


def _rows3(box, k_max, octant):
    """Rows (n1, n2, n3_lo, n3_hi) of the half ball (or octant) |k| <= k_max in 3d."""
    m = [int(math.floor(k_max * L / TWO_PI)) for L in box]
    dk = [TWO_PI / L for L in box]
    kmax2 = k_max * k_max * (1 + 1e-12)
    rows = []
    n1_range = range(0, m[0] + 1)
    for n1 in n1_range:
        k1 = n1 * dk[0]
        n2_lo = 0 if (octant or n1 == 0) else -m[1]
        for n2 in range(n2_lo, m[1] + 1):
            k2 = n2 * dk[1]
            rem = kmax2 - k1 * k1 - k2 * k2
            if rem < 0:
                continue
            hi = min(int(math.floor(math.sqrt(rem) / dk[2])), m[2])
            if octant:
                lo = 1 if (n1 == 0 and n2 == 0) else 0
            elif n1 == 0 and n2 == 0:
                lo = 1
            elif n1 == 0 and n2 < 0:
                continue
            else:
                lo = -hi
            if hi >= lo:
                rows.append((n1, n2, lo, hi))
    return rows, m


def _rows_nd(box, k_max, octant):
    """Rows (n_1, ..., n_{d-1}, n_d_lo, n_d_hi) of the half ball (or octant) |k| <= k_max in any d: the
    prefixes over the first d-1 axes in lexicographic order, the last axis a contiguous range. Half
    space: the first non-zero n_a is positive (as _rows3 for d = 3)."""
    d = len(box)
    m = [int(math.floor(k_max * L / TWO_PI)) for L in box]
    dk = [TWO_PI / L for L in box]
    kmax2 = k_max * k_max * (1 + 1e-12)
    rows = []

    def prefixes(a, prefix, rem, all_zero):
        if a == d - 1:
            if rem < 0:
                return
            hi = min(int(math.floor(math.sqrt(rem) / dk[a])), m[a])
            if octant:
                lo = 1 if all_zero else 0
            else:
                lo = 1 if all_zero else -hi
            if hi >= lo:
                rows.append((*prefix, lo, hi))
            return
        lo = 0 if (octant or all_zero) else -m[a]
        for n in range(lo, m[a] + 1):
            r = rem - (n * dk[a]) ** 2
            if r < 0:
                continue
            prefixes(a + 1, prefix + (n,), r, all_zero and n == 0)

    prefixes(0, (), kmax2, True)
    return rows, m


def _rows2(box, k_max, octant):
    m = [int(math.floor(k_max * L / TWO_PI)) for L in box]
    dk = [TWO_PI / L for L in box]
    kmax2 = k_max * k_max * (1 + 1e-12)
    rows = []
    for n1 in range(0, m[0] + 1):
        k1 = n1 * dk[0]
        rem = kmax2 - k1 * k1
        if rem < 0:
            continue
        hi = min(int(math.floor(math.sqrt(rem) / dk[1])), m[1])
        if n1 == 0:
            lo = 1
        else:
            lo = 0 if octant else -hi
        if hi >= lo:
            rows.append((n1, 0, lo, hi))
    return rows, m


@njit_parallel
def _sums3(pos, box, r_n1, r_n2, r_lo, r_hi, r_off, nk, m1, m2, m3, nchunks):
    n = pos.shape[0]
    acc_re = np.zeros((nchunks, nk))
    acc_im = np.zeros((nchunks, nk))
    nrows = r_n1.shape[0]
    for c in prange(nchunks):
        start = c * n // nchunks
        end = (c + 1) * n // nchunks
        ex = np.empty(m1 + 1, dtype=np.complex128)
        ey = np.empty(2 * m2 + 1, dtype=np.complex128)
        ez = np.empty(2 * m3 + 1, dtype=np.complex128)
        are = acc_re[c]
        aim = acc_im[c]
        for p in range(start, end):
            t = 2.0 * np.pi * pos[p, 0] / box[0]
            z = complex(math.cos(t), math.sin(t))
            ex[0] = 1.0
            for q in range(1, m1 + 1):
                ex[q] = ex[q - 1] * z
            t = 2.0 * np.pi * pos[p, 1] / box[1]
            z = complex(math.cos(t), math.sin(t))
            ey[m2] = 1.0
            for q in range(1, m2 + 1):
                ey[m2 + q] = ey[m2 + q - 1] * z
                ey[m2 - q] = ey[m2 + q].conjugate()
            t = 2.0 * np.pi * pos[p, 2] / box[2]
            z = complex(math.cos(t), math.sin(t))
            ez[m3] = 1.0
            for q in range(1, m3 + 1):
                ez[m3 + q] = ez[m3 + q - 1] * z
                ez[m3 - q] = ez[m3 + q].conjugate()
            for r in range(nrows):
                a = ex[r_n1[r]] * ey[m2 + r_n2[r]]
                ar = a.real
                ai = a.imag
                off = r_off[r] - r_lo[r]
                for q in range(r_lo[r], r_hi[r] + 1):
                    b = ez[m3 + q]
                    are[off + q] += ar * b.real - ai * b.imag
                    aim[off + q] += ar * b.imag + ai * b.real
    re = np.zeros(nk)
    im = np.zeros(nk)
    for c in range(nchunks):
        re += acc_re[c]
        im += acc_im[c]
    return re, im


@inline
def _axis_table(pos, box, p, axis, table, m, mm):
    """table[axis, mm + q] = exp(2 pi i q x_axis / L_axis) for |q| <= m (the recurrence of _sums3)."""
    t = 2.0 * np.pi * pos[p, axis] / box[axis]
    z = complex(math.cos(t), math.sin(t))
    table[axis, mm] = 1.0
    for q in range(1, m + 1):
        table[axis, mm + q] = table[axis, mm + q - 1] * z
        table[axis, mm - q] = table[axis, mm + q].conjugate()


@njit_parallel
def _sums_nd(pos, box, r_n, r_lo, r_hi, r_off, nk, m, nchunks):
    """_sums3 for d = 4..6: a row's factor is the product of its d - 1 prefix entries (in axis order),
    the last axis runs innermost. m: int64 [d]."""
    n = pos.shape[0]
    d = pos.shape[1]
    mm = 0
    for a in range(d):
        mm = max(mm, m[a])
    acc_re = np.zeros((nchunks, nk))
    acc_im = np.zeros((nchunks, nk))
    nrows = r_n.shape[0]
    for c in prange(nchunks):
        start = c * n // nchunks
        end = (c + 1) * n // nchunks
        table = np.empty((d, 2 * mm + 1), dtype=np.complex128)
        are = acc_re[c]
        aim = acc_im[c]
        for p in range(start, end):
            for a in range(d):
                _axis_table(pos, box, p, a, table, m[a], mm)
            for r in range(nrows):
                f = table[0, mm + r_n[r, 0]]
                for a in range(1, d - 1):
                    f = f * table[a, mm + r_n[r, a]]
                ar = f.real
                ai = f.imag
                off = r_off[r] - r_lo[r]
                for q in range(r_lo[r], r_hi[r] + 1):
                    b = table[d - 1, mm + q]
                    are[off + q] += ar * b.real - ai * b.imag
                    aim[off + q] += ar * b.imag + ai * b.real
    re = np.zeros(nk)
    im = np.zeros(nk)
    for c in range(nchunks):
        re += acc_re[c]
        im += acc_im[c]
    return re, im


def sofk_sums(positions, box, k_max: float, octant: bool = False):
    """Partial sums of exp(i k . x_j) over the given particles, for every k with 0 < |k| <= k_max.

    Parameters
    ----------
    positions : array [n, d], float64
        Positions (wrapped or not: k . L is a multiple of 2 pi), d = 2 to 6. May be a subset of the
        particles; sums over disjoint subsets add up.
    box : array [d], float64
        Box edges L_a.
    k_max : float
        Largest |k| (inverse diameters).
    octant : bool
        False: the half space (every +-k pair once). True: only n_a >= 0 (freud's sampling).

    Returns
    -------
    kvecs : array [nk, d], float64
        The wave vectors, 2 pi n_a / L_a, in a fixed order that depends only on box, k_max, octant.
    re_sum, im_sum : array [nk], float64
        Real and imaginary parts of sum_j exp(i k . x_j).
    """
    pos, box = _checked(positions, box)
    nvec, rr, off, m = _table(box, k_max, octant)
    kvecs = nvec * (TWO_PI / box)
    nk = kvecs.shape[0]
    if pos.shape[0] == 0 or nk == 0:
        return kvecs, np.zeros(nk), np.zeros(nk)
    nchunks = max(1, min(numba.get_num_threads(), pos.shape[0]))
    if pos.shape[1] > 3:
        d = pos.shape[1]
        re, im = _sums_nd(pos, box, rr[:, :d - 1].copy(), rr[:, d - 1].copy(), rr[:, d].copy(), off, nk,
                          np.asarray(m, dtype=np.int64), nchunks)
        return kvecs, re, im
    if pos.shape[1] == 2:
        pos, box, m = _embed_2d(pos, box, m)
    re, im = _sums3(pos, box, rr[:, 0].copy(), rr[:, 1].copy(), rr[:, 2].copy(),
                    rr[:, 3].copy(), off, nk, m[0], m[1], m[2], nchunks)
    return kvecs, re, im


def _checked(positions, box):
    pos = np.ascontiguousarray(positions, dtype=np.float64)
    box = np.ascontiguousarray(box, dtype=np.float64)
    if pos.ndim != 2 or not 2 <= pos.shape[1] <= MAX_DIM or box.shape != (pos.shape[1],):
        raise ValueError(f"positions must be [n, d] with d = 2 to {MAX_DIM} and box [d]")
    return pos, box


def wave_vectors(box, k_max: float, octant: bool = False):
    """The wave vectors k = 2 pi n / L with 0 < |k| <= k_max of the half space (every +-k pair once) or
    of the octant n_a >= 0, in the kernels' order, which depends only on (box, k_max, octant).

    box: [d] edges, d = 2 to 6. Returns ``(kvecs, nvecs)``: float64 [nk, d] and the integers n, int64
    [nk, d]; nk = 0 if no wave vector fits (k_max < 2 pi / max(L_a)).
    """
    box = np.ascontiguousarray(box, dtype=np.float64)
    nvec = _table(box, k_max, octant)[0]
    return nvec * (TWO_PI / box), nvec


def _table(box, k_max, octant):
    """(n [nk, d], rows, row offsets [r], m [d]): the k set as the rows the kernels loop over; rows
    [r, 4] = (n1, n2, n_last_lo, n_last_hi) for d <= 3, [r, d + 1] = (n_1 .. n_{d-1}, lo, hi) above."""
    if box.ndim != 1 or not 2 <= box.shape[0] <= MAX_DIM:
        raise ValueError(f"box must be [d] with d = 2 to {MAX_DIM}")
    if not k_max > 0:
        raise ValueError(f"k_max must be positive, got {k_max}")
    d = box.shape[0]
    if d > 3:
        rows, m = _rows_nd(box, float(k_max), bool(octant))
        rr = np.array(rows, dtype=np.int64).reshape(-1, d + 1)
        counts = rr[:, d] - rr[:, d - 1] + 1
        off = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
        nk = int(counts.sum())
        nvec = np.empty((nk, d), dtype=np.int64)
        for row, o, c in zip(rr, off, counts):
            nvec[o:o + c, :d - 1] = row[:d - 1]
            nvec[o:o + c, d - 1] = np.arange(row[d - 1], row[d] + 1)
        return nvec, rr, off, m
    rows, m = (_rows3 if d == 3 else _rows2)(box, float(k_max), bool(octant))
    rr = np.array(rows, dtype=np.int64).reshape(-1, 4)
    counts = rr[:, 3] - rr[:, 2] + 1
    off = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
    nk = int(counts.sum())
    nvec = np.empty((nk, d), dtype=np.int64)
    for (n1, n2, lo, hi), o, c in zip(rows, off, counts):
        q = np.arange(lo, hi + 1)
        nvec[o:o + c, 0] = n1
        if d == 3:
            nvec[o:o + c, 1] = n2
            nvec[o:o + c, 2] = q
        else:
            nvec[o:o + c, 1] = q
    return nvec, rr, off, m


def _embed_2d(pos, box, m):
    """(x, y) -> (x, 0, y) in a box (Lx, 1, Ly) with no y harmonics, so the 3d kernels' inner k loop
    runs over the 2d y axis."""
    pos = np.ascontiguousarray(np.stack([pos[:, 0], np.zeros(len(pos)), pos[:, 1]], axis=1))
    return pos, np.array([box[0], 1.0, box[1]]), [m[0], 0, m[1]]


def bin_structure_factor(kvecs, s_values, bin_edges):
    """Mean of ``s_values`` over the k in each bin of |k|; returns ``(S_bin, counts)``.

    Bins are [e_i, e_{i+1}); |k| equal to the last edge goes into the last bin; k outside the edges
    are dropped. Empty bins have S = NaN.
    """
    kmag = np.linalg.norm(kvecs, axis=1)
    edges = np.asarray(bin_edges, dtype=np.float64)
    nb = edges.size - 1
    idx = np.searchsorted(edges, kmag, side="right") - 1
    idx[np.isclose(kmag, edges[-1], rtol=1e-12, atol=0)] = nb - 1
    ok = (idx >= 0) & (idx < nb)
    counts = np.bincount(idx[ok], minlength=nb)
    sums = np.bincount(idx[ok], weights=np.asarray(s_values)[ok], minlength=nb)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return s, counts


def shell_structure_factor(kvecs, s_values):
    """Mean of ``s_values`` over each shell of wave vectors with the same |k| (to 1e-9 relative).

    Returns ``(k, S, counts, shell_of)``: the shells' |k| (ascending), mean S, number of wave vectors,
    and the shell index of every wave vector. No binning, so each point sits at its exact |k|: bins of
    width 2 pi / L mix |n|^2 = 1 and 2 in their first bin, and plotting that bin at its centre drags a
    small-k slope down (docs/analysis.md, "Hyperuniformity").
    """
    k2 = np.einsum("ij,ij->i", kvecs, kvecs)
    key = np.rint(k2 / k2.min() * 1e9).astype(np.int64)
    _, shell_of, counts = np.unique(key, return_inverse=True, return_counts=True)
    k = np.sqrt(np.bincount(shell_of, weights=k2) / counts)
    s = np.bincount(shell_of, weights=np.asarray(s_values, dtype=np.float64)) / counts
    return k, s, counts, shell_of


# ------------------------------------------------------------------------- exact (fixed-point) sums
# For the simulator's distributed S(k) (mpisim/parallel/sofk.py): the float sums above depend on how the
# particles are split (threads, MPI ranks); these do not. Each term exp(i k . x_j), the same product as
# in _sums3, is rounded to 2^-52 and added as an int64 over a block of BLOCK particles; each block's sums
# are carried into two int64 limbs. Integer addition is exact, so the totals are the same for any split
# of the particles and any order (docs/structure-factor.md). The loop runs over particles innermost (an
# exact int64 reduction the compiler vectorizes), ~3x faster than the float kernel.
TERM_BITS = 52          # a term (|t| <= 1) becomes rint(t 2^52); a block's sum stays below 2^59
BLOCK = 64
HI_BITS = 21            # totals: hi 2^-21 + lo 2^-52, lo carried in [0, 2^31)


@inline
def _powers(pos, box, p, j, axis, xr, xi, m, signed):
    """Row j of the tables xr + i xi [2m+1 or m+1, BLOCK]: exp(2 pi i q x_axis / L_axis), |q| <= m, by
    the recurrence of _sums3 (same complex products); ``signed`` stores q < 0 at m - |q|."""
    t = 2.0 * np.pi * pos[p, axis] / box[axis]
    cr = math.cos(t)
    ci = math.sin(t)
    c0 = m if signed else 0
    xr[c0, j] = 1.0
    xi[c0, j] = 0.0
    for q in range(1, m + 1):
        pr = xr[c0 + q - 1, j]
        pq = xi[c0 + q - 1, j]
        xr[c0 + q, j] = pr * cr - pq * ci
        xi[c0 + q, j] = pr * ci + pq * cr
        if signed:
            xr[c0 - q, j] = xr[c0 + q, j]
            xi[c0 - q, j] = -xi[c0 + q, j]


@njit_parallel
def _sums3_fixed(pos, box, r_n1, r_n2, r_lo, r_hi, r_off, nk, m1, m2, m3, nchunks):
    n = pos.shape[0]
    acc = np.zeros((nchunks, 4, nk), dtype=np.int64)
    nrows = r_n1.shape[0]
    scale = 2.0 ** TERM_BITS
    for c in prange(nchunks):
        start = c * n // nchunks
        end = (c + 1) * n // nchunks
        xr = np.empty((m1 + 1, BLOCK))
        xi = np.empty((m1 + 1, BLOCK))
        yr = np.empty((2 * m2 + 1, BLOCK))
        yi = np.empty((2 * m2 + 1, BLOCK))
        zr = np.empty((2 * m3 + 1, BLOCK))
        zi = np.empty((2 * m3 + 1, BLOCK))
        ar = np.empty(BLOCK)
        ai = np.empty(BLOCK)
        tot = acc[c]
        for b0 in range(start, end, BLOCK):
            nb = min(BLOCK, end - b0)
            for j in range(nb):
                _powers(pos, box, b0 + j, j, 0, xr, xi, m1, False)
                _powers(pos, box, b0 + j, j, 1, yr, yi, m2, True)
                _powers(pos, box, b0 + j, j, 2, zr, zi, m3, True)
            for r in range(nrows):
                i1 = r_n1[r]
                i2 = m2 + r_n2[r]
                for j in range(nb):    # a = ex ey, scaled by 2^52 (exact)
                    ar[j] = (xr[i1, j] * yr[i2, j] - xi[i1, j] * yi[i2, j]) * scale
                    ai[j] = (xr[i1, j] * yi[i2, j] + xi[i1, j] * yr[i2, j]) * scale
                off = r_off[r] - r_lo[r]
                for q in range(r_lo[r], r_hi[r] + 1):
                    br = zr[m3 + q]
                    bi = zi[m3 + q]
                    sre = np.int64(0)
                    sim = np.int64(0)
                    for j in range(nb):
                        sre += np.int64(np.rint(ar[j] * br[j] - ai[j] * bi[j]))
                        sim += np.int64(np.rint(ar[j] * bi[j] + ai[j] * br[j]))
                    k = off + q
                    tot[0, k] += sre >> 31             # floor: hi limb, units 2^-21
                    tot[1, k] += sre & 0x7FFFFFFF      # remainder: lo limb, units 2^-52
                    tot[2, k] += sim >> 31
                    tot[3, k] += sim & 0x7FFFFFFF
    out = np.zeros((4, nk), dtype=np.int64)
    for c in range(nchunks):
        out += acc[c]
    return out


@njit_parallel
def _sums_nd_fixed(pos, box, r_n, r_lo, r_hi, r_off, nk, m, nchunks):
    """_sums3_fixed for d = 4..6: a row's factor is the product of its d - 1 prefix entries (in axis
    order, then scaled by 2^52, exact), each term rounded to 2^-52 and added in int64 limbs."""
    n = pos.shape[0]
    d = pos.shape[1]
    mm = 0
    for a in range(d):
        mm = max(mm, m[a])
    acc = np.zeros((nchunks, 4, nk), dtype=np.int64)
    nrows = r_n.shape[0]
    scale = 2.0 ** TERM_BITS
    for c in prange(nchunks):
        start = c * n // nchunks
        end = (c + 1) * n // nchunks
        tr = np.empty((d, 2 * mm + 1, BLOCK))
        ti = np.empty((d, 2 * mm + 1, BLOCK))
        ar = np.empty(BLOCK)
        ai = np.empty(BLOCK)
        tot = acc[c]
        for b0 in range(start, end, BLOCK):
            nb = min(BLOCK, end - b0)
            for j in range(nb):
                for a in range(d):
                    _powers(pos, box, b0 + j, j, a, tr[a, mm - m[a]:mm + m[a] + 1], ti[a, mm - m[a]:mm + m[a] + 1],
                            m[a], True)
            for r in range(nrows):
                for j in range(nb):
                    pr = tr[0, mm + r_n[r, 0], j]
                    pi = ti[0, mm + r_n[r, 0], j]
                    for a in range(1, d - 1):
                        xr = tr[a, mm + r_n[r, a], j]
                        xi = ti[a, mm + r_n[r, a], j]
                        pr, pi = pr * xr - pi * xi, pr * xi + pi * xr
                    ar[j] = pr * scale
                    ai[j] = pi * scale
                off = r_off[r] - r_lo[r]
                last = d - 1
                for q in range(r_lo[r], r_hi[r] + 1):
                    br = tr[last, mm + q]
                    bi = ti[last, mm + q]
                    sre = np.int64(0)
                    sim = np.int64(0)
                    for j in range(nb):
                        sre += np.int64(np.rint(ar[j] * br[j] - ai[j] * bi[j]))
                        sim += np.int64(np.rint(ar[j] * bi[j] + ai[j] * br[j]))
                    k = off + q
                    tot[0, k] += sre >> 31
                    tot[1, k] += sre & 0x7FFFFFFF
                    tot[2, k] += sim >> 31
                    tot[3, k] += sim & 0x7FFFFFFF
    out = np.zeros((4, nk), dtype=np.int64)
    for c in range(nchunks):
        out += acc[c]
    return out


def sofk_sums_fixed(positions, box, k_max: float, octant: bool = False):
    """Like :func:`sofk_sums`, but exact: ``(kvecs, acc)`` with acc int64 [4, nk] = (re_hi, re_lo,
    im_hi, im_lo), sum_j exp(i k . x_j) = hi 2^-21 + lo 2^-52 (each term rounded to 2^-52).

    The integers add exactly over any split of the particles (e.g. an MPI integer Allreduce), so the
    total does not depend on the split; :func:`fixed_to_float` turns them into floats. Up to 2^31
    particles. A 2-d system runs the 3-d kernel with a unit middle axis (identical terms).
    """
    pos, box = _checked(positions, box)
    nvec, rr, off, m = _table(box, k_max, octant)
    kvecs = nvec * (TWO_PI / box)
    nk = kvecs.shape[0]
    if nk == 0 or pos.shape[0] == 0:
        return kvecs, np.zeros((4, nk), dtype=np.int64)
    if pos.shape[1] > 3:
        d = pos.shape[1]
        nchunks = max(1, min(numba.get_num_threads(), pos.shape[0]))
        return kvecs, _sums_nd_fixed(pos, box, rr[:, :d - 1].copy(), rr[:, d - 1].copy(), rr[:, d].copy(), off,
                                     nk, np.asarray(m, dtype=np.int64), nchunks)
    if pos.shape[1] == 2:
        pos, box, m = _embed_2d(pos, box, m)
    nchunks = max(1, min(numba.get_num_threads(), pos.shape[0]))
    acc = _sums3_fixed(pos, box, rr[:, 0].copy(), rr[:, 1].copy(), rr[:, 2].copy(), rr[:, 3].copy(),
                       off, nk, m[0], m[1], m[2], nchunks)
    return kvecs, acc


def fixed_to_float(acc):
    """(re, im) float64 [nk] nearest to the fixed-point sums of :func:`sofk_sums_fixed` (exact
    integer arithmetic, then one rounding)."""
    acc = np.asarray(acc, dtype=np.int64)
    hi = acc[0::2] + (acc[1::2] >> 31)          # carry: lo in [0, 2^31)
    lo = acc[1::2] & 0x7FFFFFFF
    if np.abs(hi).max(initial=0) < 2 ** 53:     # hi 2^-21 and lo 2^-52 exact: one rounding in the sum
        v = np.ldexp(hi.astype(np.float64), -HI_BITS) + np.ldexp(lo.astype(np.float64), -TERM_BITS)
    else:
        v = np.array([[((int(h) << 31) + int(l)) / 2 ** TERM_BITS for h, l in zip(hr, lr)]
                      for hr, lr in zip(hi, lo)]).reshape(hi.shape)
    return v[0], v[1]



# ------------------------------------------------------------------------------------------- NUFFT
NUFFT_TOLERANCE = 1e-6   # finufft's relative tolerance: S within ~1e-6 of the exact sums (docs/structure-factor.md)


METHODS = ("auto", "direct", "nufft")
# "auto": direct sums up to this many wave vectors (by dimension), NUFFT beyond. Measured (N = 1e5,
# docs/structure-factor.md): the NUFFT costs as much as the direct sums of ~400 (2d) / ~1000 (3d) wave
# vectors; up to these limits the exact sums cost at most ~2.5x the NUFFT. Eight shells (the default
# k_max) are ~100 (2d) / ~1050 (3d) wave vectors: direct.
AUTO_DIRECT_MAX_K = {2: 1024, 3: 2048}


def resolve_method(method, n_wave_vectors, dim):
    """The method that ``method`` ("auto", "direct" or "nufft") means for a k set of ``n_wave_vectors``
    in ``dim`` dimensions. Depends only on the k set, so every rank picks the same."""
    if method not in METHODS:
        raise ValueError(f"method: must be one of {', '.join(METHODS)}, got {method!r}")
    if dim > 3:
        if method == "nufft":
            raise ValueError(f"method: nufft needs d <= 3 (finufft has no {dim}-d transform); use direct or auto")
        return "direct"
    if method == "auto":
        return "direct" if n_wave_vectors <= AUTO_DIRECT_MAX_K[dim] else "nufft"
    return method


def nufft_amplitudes(positions, box, nvecs, tolerance=NUFFT_TOLERANCE):
    """sum_j exp(i k . x_j) at k = 2 pi n / L for the integer ``nvecs`` [nk, d], complex128 [nk], by one
    type-1 non-uniform FFT (finufft) onto the modes |n_a| <= max |n_a| of ``nvecs``.

    positions [n, d] (wrapped or not), box [d]. finufft's ``tolerance`` bounds the error relative to
    the l2 norm of all modes; for S = |F|^2 / N that is an absolute error of S of about ``tolerance``
    (measured: docs/structure-factor.md). Linear in the particles: amplitudes of disjoint subsets add up
    to those of the whole up to rounding (~1e-16 relative), not bit for bit. Threads: numba's count.
    """
    import finufft
    pos, box = _checked(positions, box)
    nvecs = np.asarray(nvecs, dtype=np.int64)
    d, nk = box.shape[0], nvecs.shape[0]
    if nvecs.shape != (nk, d):
        raise ValueError(f"nvecs must be [nk, {d}], got {nvecs.shape}")
    if d > 3:
        raise ValueError(f"nufft_amplitudes: finufft has no {d}-d transform (d <= 3); use the direct sums")
    if nk == 0 or pos.shape[0] == 0:
        return np.zeros(nk, dtype=np.complex128)
    m = np.abs(nvecs).max(axis=0)
    u = pos / box
    theta = TWO_PI * (u - np.floor(u))                     # in [0, 2 pi]: finufft's periodic domain
    coords = [np.ascontiguousarray(theta[:, a]) for a in range(d)]
    transform = finufft.nufft3d1 if d == 3 else finufft.nufft2d1
    modes = transform(*coords, np.ones(pos.shape[0], dtype=np.complex128), tuple(int(2 * q + 1) for q in m),
                      eps=float(tolerance), isign=1, nthreads=numba.get_num_threads())
    return modes[tuple(nvecs[:, a] + m[a] for a in range(d))]     # modes -m..m along each axis


def nufft_sums(positions, box, k_max: float, octant: bool = False, tolerance=NUFFT_TOLERANCE):
    """Like :func:`sofk_sums` (same k set and order), by :func:`nufft_amplitudes`: (kvecs, re, im)."""
    pos, box = _checked(positions, box)
    kvecs, nvecs = wave_vectors(box, k_max, octant)
    f = nufft_amplitudes(pos, box, nvecs, tolerance)
    return kvecs, f.real.copy(), f.imag.copy()
