"""Vectorised draws from the counter-based generator (for set-up, not hot paths)."""
import numpy as np

from ._jit import njit
from .rng import uniform


@njit
def uniforms(seed, step, stream, ids, sub):
    out = np.empty(ids.shape[0])
    for k in range(ids.shape[0]):
        out[k] = uniform(seed, step, stream, ids[k], sub)
    return out
