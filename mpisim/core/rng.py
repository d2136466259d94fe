"""Counter-based random numbers keyed by (seed, step, stream, global ids).

A draw is a pure function of its key, never of storage order or of the rank that computes it, so the two
ranks that share a pair draw the same kick without a message, and a restart continues the same sequence
(docs/algorithms.md, "Random numbers"). The mixer is the SplitMix64 finaliser (Steele, Lea & Flood 2014)
applied as a sponge over the key words; its output is uniform over 64 bits for distinct keys.
"""
import numpy as np

from ._jit import inline

# Streams: one per kind of draw, so that no two uses of the generator share keys.
STREAM_PAIR_UNIFORM = 1      # u^{ij} of pairwise BRO, selection of SGD pairs
STREAM_PAIR_NORMAL = 2       # xi^{ij} of the pairwise stochastic approximation
STREAM_PARTICLE_UNIFORM = 3  # u^i of individual BRO, selection theta^i of RCD
STREAM_PARTICLE_NORMAL = 4   # xi^i of the individual stochastic approximation
STREAM_INIT = 5              # initial positions
STREAM_NOISE = 6             # per-particle vector noise (PGD, Langevin)
STREAM_RADII = 7             # polydisperse radii
STREAM_PARTICLE_DIRECTION = 8   # the random direction of a particle's RO kick, keyed (id, axis)
# The random directions of a pair's two RO kicks, keyed (own id, other id) on one stream per axis:
# STREAM_PAIR_DIRECTION + axis, axes 0..5.
STREAM_PAIR_DIRECTION = 16

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_TWO_M53 = 1.0 / 9007199254740992.0


@inline
def mix64(z):
    """SplitMix64 finaliser: a bijection of uint64 with full avalanche."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@inline
def hash_key(seed, step, stream, a, b):
    """64 random bits for the key (seed, step, stream, a, b); all arguments are integers >= 0."""
    h = mix64(np.uint64(seed) * _GOLDEN + np.uint64(stream))
    h = mix64(h + np.uint64(step) * _GOLDEN)
    h = mix64(h + np.uint64(a) * _GOLDEN)
    return mix64(h + np.uint64(b) * _GOLDEN)


@inline
def uniform(seed, step, stream, a, b):
    """U[0, 1) with 53 random bits."""
    return np.float64(hash_key(seed, step, stream, a, b) >> _S11) * _TWO_M53


# Acklam's rational approximation of the inverse normal CDF (relative error < 1.2e-9): no
# transcendental function in the central 95% of draws, and one hash per normal.
_A = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02,
      -3.066479806614716e+01, 2.506628277459239e+00)
_B = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01,
      -1.328068155288572e+01)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00,
      4.374664141464968e+00, 2.938163982698783e+00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00)
_P_LOW = 0.02425


@inline
def _tail(p):
    q = np.sqrt(-2.0 * np.log(p))
    return (((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4]) * q + _C[5]) / \
        ((((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3]) * q + 1.0)


@inline
def normal(seed, step, stream, a, b):
    """N(0, 1): the inverse normal CDF of a uniform in (0, 1) with 53 random bits."""
    p = (np.float64(hash_key(seed, step, stream, a, b) >> _S11) + 0.5) * _TWO_M53
    if p < _P_LOW:
        return _tail(p)
    if p > 1.0 - _P_LOW:
        return -_tail(1.0 - p)
    q = p - 0.5
    r = q * q
    return (((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5]) * q / \
        (((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1.0)
