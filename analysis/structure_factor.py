r"""Static structure factor S(k) by direct summation, and its small-k exponent (paper Fig. S2).

Definition: for N particles in a periodic box with edges L_a,

    S(k) = |sum_j exp(i k . x_j)|^2 / N,   k = 2 pi (n_1 / L_1, ..., n_d / L_d),  n integer,

for every k with 0 < |k| <= k_max (k = 0 is excluded), then averaged over the k in each radial bin
[k_lo, k_hi) of |k| (the last bin also takes |k| = k_max). Because S(-k) = S(k), only a half space of
k is summed (the first non-zero n_a positive), which leaves every bin average unchanged.

The kernel :func:`sofk_sums` loops over particles (outer) and k (inner) and never evaluates a
trigonometric function per (k, particle): per particle it computes z_a = exp(2 pi i x_a / L_a)
once per axis, its powers z_a^n by recurrence (negative n by conjugation), and each term of the
sum as a product of d table entries. The sums are additive over particles, so a subset of the
particles (one MPI rank's) can be summed and the partial sums added: that is how the simulator's
parallel S(k) reuses it.

``octant=True`` sums instead the k with all n_a >= 0, the set freud's
``freud.diffraction.StaticStructureFactorDirect`` samples; use it to compare with freud bin by bin.

The small-k exponent alpha of S(k) ~ k^alpha (hyperuniformity: alpha > 0; Poisson: alpha = 0) is a
least-squares line through log S against log k over the bins with k_fit_min <= k <= k_fit_max.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> box = np.array([20.0, 20.0, 20.0])
>>> x = rng.random((4000, 3)) * box
>>> sk = StructureFactor(bins=10, k_max=3.0, k_min=0.5).compute(x, box)
>>> bool(abs(sk.S_k.mean() - 1.0) < 0.1)          # a Poisson configuration: S = 1
True
"""
from __future__ import annotations

import math

import numba
import numpy as np
from numba import prange

from .errors import AnalysisError, Computed

TWO_PI = 2.0 * math.pi


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


@numba.njit(cache=True, nogil=True, parallel=True)
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


def sofk_sums(positions, box, k_max: float, octant: bool = False):
    """Partial sums of exp(i k . x_j) over the given particles, for every k with 0 < |k| <= k_max.

    Parameters
    ----------
    positions : array [n, d], float64
        Positions (wrapped or not: k . L is a multiple of 2 pi), d = 2 or 3. May be a subset of the
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
    pos = np.ascontiguousarray(positions, dtype=np.float64)
    box = np.ascontiguousarray(box, dtype=np.float64)
    if pos.ndim != 2 or pos.shape[1] not in (2, 3) or box.shape != (pos.shape[1],):
        raise AnalysisError("positions must be [n, d] with d = 2 or 3 and box [d]")
    if not k_max > 0:
        raise AnalysisError(f"k_max must be positive, got {k_max}")
    d = pos.shape[1]
    rows, m = (_rows3 if d == 3 else _rows2)(box, float(k_max), bool(octant))
    if not rows:
        return np.empty((0, d)), np.empty(0), np.empty(0)
    rr = np.array(rows, dtype=np.int64)
    counts = rr[:, 3] - rr[:, 2] + 1
    off = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
    nk = int(counts.sum())
    # the n vectors in kernel order
    nvec = np.empty((nk, d), dtype=np.int64)
    for (n1, n2, lo, hi), o, c in zip(rows, off, counts):
        q = np.arange(lo, hi + 1)
        nvec[o:o + c, 0] = n1
        if d == 3:
            nvec[o:o + c, 1] = n2
            nvec[o:o + c, 2] = q
        else:
            nvec[o:o + c, 1] = q
    kvecs = nvec * (TWO_PI / box)
    nchunks = max(1, min(numba.get_num_threads(), pos.shape[0]))
    if pos.shape[0] == 0:
        return kvecs, np.zeros(nk), np.zeros(nk)
    if d == 2:
        pos, box, m = _embed_2d(pos, box, m)
    re, im = _sums3(pos, box, rr[:, 0].copy(), rr[:, 1].copy(), rr[:, 2].copy(),
                    rr[:, 3].copy(), off, nk, m[0], m[1], m[2], nchunks)
    return kvecs, re, im


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


def fit_power_law(x, y, x_min=None, x_max=None, weights=None):
    """Least-squares line through (log x, log y) for x_min <= x <= x_max, finite positive y.

    ``weights`` (optional, one per point) weight the squared residuals, e.g. the number of wave vectors
    averaged into each S(k) point, to which the variance of its log is inversely proportional.
    Returns ``(exponent, exponent_err, prefactor, n_points)``; the error is the slope's standard
    error from the (weighted) residuals (NaN with fewer than 3 points).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
    sel = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0) & (w > 0)
    if x_min is not None:
        sel &= x >= x_min
    if x_max is not None:
        sel &= x <= x_max
    if sel.sum() < 2:
        raise AnalysisError(f"power-law fit needs >= 2 points in range, have {int(sel.sum())}")
    lx, ly, w = np.log(x[sel]), np.log(y[sel]), w[sel]
    mx, my = np.average(lx, weights=w), np.average(ly, weights=w)
    sxx = np.sum(w * (lx - mx) ** 2)
    slope = np.sum(w * (lx - mx) * (ly - my)) / sxx
    icpt = my - slope * mx
    npts = int(sel.sum())
    if npts > 2:
        res = ly - (slope * lx + icpt)
        err = math.sqrt(np.sum(w * res * res) / (npts - 2) / sxx)
    else:
        err = math.nan
    return float(slope), float(err), float(math.exp(icpt)), npts


def default_bins(box, k_max, k_min=0.0) -> int:
    """Bins of width about 2 pi / L (the spacing of |k| along the longest box edge), at least 4."""
    return max(4, int(round((k_max - k_min) / (TWO_PI / float(np.max(box))))))


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


class StructureFactor(Computed):
    """Binned S(k) of one configuration (freud-like: ``compute(...) -> self``, then properties).

    Parameters
    ----------
    bins : int
        Number of |k| bins between k_min and k_max.
    k_max : float
        Largest |k| (inverse diameters).
    k_min : float
        Smallest |k| binned (k = 0 is always excluded).
    octant : bool
        Sum only the n_a >= 0 octant, as freud does (see :func:`sofk_sums`).
    """

    def __init__(self, bins: int, k_max: float, k_min: float = 0.0, octant: bool = False):
        if bins < 1:
            raise AnalysisError("bins must be >= 1")
        if not 0 <= k_min < k_max:
            raise AnalysisError(f"need 0 <= k_min < k_max, got k_min={k_min}, k_max={k_max}")
        self.bins, self.k_max, self.k_min, self.octant = int(bins), float(k_max), float(k_min), bool(octant)
        self._bin_edges = np.linspace(self.k_min, self.k_max, self.bins + 1)
        self._computed = False

    def compute(self, positions, box, n_total: int | None = None) -> "StructureFactor":
        """S(k) of ``positions`` [N, d] in the periodic ``box`` [d]; ``n_total`` defaults to N."""
        pos = np.asarray(positions, dtype=np.float64)
        n = pos.shape[0] if n_total is None else int(n_total)
        kv, re, im = sofk_sums(pos, box, self.k_max, self.octant)
        s = (re * re + im * im) / n
        self._kvecs, self._s_all = kv, s
        self._box = np.asarray(box, dtype=np.float64)
        self._s_bin, self._counts = bin_structure_factor(kv, s, self._bin_edges)
        self._k_mean = bin_structure_factor(kv, np.linalg.norm(kv, axis=1), self._bin_edges)[0]
        self._computed = True
        return self

    @property
    def bin_edges(self) -> np.ndarray:
        return self._bin_edges

    @property
    def bin_centers(self) -> np.ndarray:
        return 0.5 * (self._bin_edges[1:] + self._bin_edges[:-1])

    @property
    def k_mean(self) -> np.ndarray:
        """Mean |k| of the wave vectors in each bin, [bins] (NaN for empty bins): where a bin's S(k)
        belongs on a k axis (a bin's centre can be far from it when it holds a few shells)."""
        self._need("k_mean")
        return self._k_mean

    @property
    def S_k(self) -> np.ndarray:
        """Bin-averaged S(k), [bins] (NaN for empty bins)."""
        self._need("S_k")
        return self._s_bin

    @property
    def k_counts(self) -> np.ndarray:
        """Number of wave vectors in each bin."""
        self._need("k_counts")
        return self._counts

    @property
    def k_points(self) -> np.ndarray:
        """All summed wave vectors [nk, d]."""
        self._need("k_points")
        return self._kvecs

    @property
    def S_k_points(self) -> np.ndarray:
        """S at each wave vector [nk]."""
        self._need("S_k_points")
        return self._s_all

    @property
    def min_valid_k(self) -> float:
        """2 pi / min(L): the smallest non-zero |k| of the box."""
        self._need("min_valid_k")
        return float(TWO_PI / self._box.min())

    def exponent(self, k_fit_max: float = 1.0, k_fit_min: float | None = None):
        """alpha of S(k) ~ k^alpha over bins with k_fit_min <= k_mean <= k_fit_max: ``(alpha, err)``;
        each bin at its mean |k|, weighted by its number of wave vectors."""
        self._need("exponent")
        kmin = self.min_valid_k * (1 - 1e-9) if k_fit_min is None else k_fit_min
        ok = self._counts > 0
        a, e, _, _ = fit_power_law(self._k_mean[ok], self._s_bin[ok], kmin, k_fit_max, self._counts[ok])
        return a, e


# ------------------------------------------------------------------------- exact (fixed-point) sums
# Added for the simulator's distributed S(k) (mpisim/sofk.py): the float sums above depend on how the
# particles are split (threads, MPI ranks); these do not. Each term exp(i k . x_j), the same product as
# in _sums3, is rounded to 2^-52 and added as an int64 over a block of BLOCK particles; each block's sums
# are carried into two int64 limbs. Integer addition is exact, so the totals are the same for any split
# of the particles and any order (docs/structure-factor.md). The loop runs over particles innermost (an
# exact int64 reduction the compiler vectorizes), ~3x faster than the float kernel.
TERM_BITS = 52          # a term (|t| <= 1) becomes rint(t 2^52); a block's sum stays below 2^59
BLOCK = 64
HI_BITS = 21            # totals: hi 2^-21 + lo 2^-52, lo carried in [0, 2^31)


@numba.njit(cache=True, nogil=True, inline="always")
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


@numba.njit(cache=True, nogil=True, parallel=True)
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


def sofk_sums_fixed(positions, box, k_max: float, octant: bool = False):
    """Like :func:`sofk_sums`, but exact: ``(kvecs, acc)`` with acc int64 [4, nk] = (re_hi, re_lo,
    im_hi, im_lo), sum_j exp(i k . x_j) = hi 2^-21 + lo 2^-52 (each term rounded to 2^-52).

    The integers add exactly over any split of the particles (e.g. an MPI integer Allreduce), so the
    total does not depend on the split; :func:`fixed_to_float` turns them into floats. Up to 2^31
    particles. A 2-d system runs the 3-d kernel with a unit middle axis (identical terms).
    """
    pos = np.ascontiguousarray(positions, dtype=np.float64)
    box = np.ascontiguousarray(box, dtype=np.float64)
    if pos.ndim != 2 or pos.shape[1] not in (2, 3) or box.shape != (pos.shape[1],):
        raise AnalysisError("positions must be [n, d] with d = 2 or 3 and box [d]")
    d = pos.shape[1]
    kvecs, _, _ = sofk_sums(np.empty((0, d)), box, k_max, octant)   # the k set and its order
    nk = kvecs.shape[0]
    if nk == 0 or pos.shape[0] == 0:
        return kvecs, np.zeros((4, nk), dtype=np.int64)
    rows, m = (_rows3 if d == 3 else _rows2)(box, float(k_max), bool(octant))
    rr = np.array(rows, dtype=np.int64)
    counts = rr[:, 3] - rr[:, 2] + 1
    off = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
    if d == 2:
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
