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


@inline
def normal(seed, step, stream, a, b):
    """N(0, 1) by Box-Muller from the two uniforms of sub-keys 2b and 2b + 1."""
    u1 = uniform(seed, step, stream, a, 2 * b)
    u2 = uniform(seed, step, stream, a, 2 * b + 1)
    return np.sqrt(-2.0 * np.log(1.0 - u1)) * np.cos(2.0 * np.pi * u2)
