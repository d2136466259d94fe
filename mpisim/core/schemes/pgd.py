"""Perturbed gradient descent with temporally correlated noise (docs/algorithms.md, "pgd").

x^i_{k+1} = x^i_k - alpha grad_i V + sigma eta^i_k on active particles (independent), or
x^i_{k+1} = x^i_k - alpha grad_i V + sigma sum_{j in Gamma^i} (eta^i_k - eta^j_k) / sqrt(2) (reciprocal),
with the one-step-memory (MA(1)) noise eta^i_k = a xi^i_k + b m^i, xi ~ N(0, I_d), a^2 + b^2 = 1,
a b = c_t (the correlation of consecutive kicks), and m^i the xi of the particle's previous active step
(``ParticleState.aux`` columns 0..2). c_t = -1/2 is anti-PGD: eta_k = (xi_k - xi_{k-1}) / sqrt(2).
"""
from .._jit import inline
from ..rng import STREAM_NOISE, normal
from ._params import MEMORY_NEW, MEMORY_OLD, RATE, SIGMA


@inline
def pair_coefficient(params, seed, step, id_lo, id_hi, force):
    """The gradient part: alpha |U'(r)| for every overlapping pair (as gd)."""
    return params[RATE] * force


@inline
def innovation(seed, step, pid, a):
    """xi^i_k along axis a: the fresh N(0, 1) draw of particle pid at this step."""
    return normal(seed, step, STREAM_NOISE, pid, a)


@inline
def kick(params, xi, memory):
    """sigma eta = sigma (a xi + b m): one component of the particle's correlated noise."""
    return params[SIGMA] * (params[MEMORY_NEW] * xi + params[MEMORY_OLD] * memory)
