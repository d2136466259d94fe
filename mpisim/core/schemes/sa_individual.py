"""Gaussian stochastic approximation of individual-particle BRO and RCD (paper Eq. A8; Eq. A3 at
alpha = eps / b_f, b_f = 3/4).

x^i_{k+1} = x^i_k - alpha b_f grad_i V + alpha sqrt(b_f - b_f^2) sqrt(Omega^i) xi^i, Omega^i =
grad_i V grad_i V^T. Omega^i has rank one, so the noise is z^i grad_i V with one scalar z^i ~ N(0, 1).
"""
from dataclasses import dataclass

from .._jit import inline
from ..rng import STREAM_PARTICLE_NORMAL, normal
from ._params import BATCH, NOISE, RATE
from .base import BatchFraction, LearningRate, Scheme


@dataclass(frozen=True, kw_only=True)
class Parameters(BatchFraction, LearningRate):
    """alpha and b_f of the scheme it approximates."""


SCHEME = Scheme(name="sa-individual", kind="particle", parameters=Parameters, step_size_key="learning_rate",
                equation="Eq. A8 (Eq. A3)")


@inline
def pair_coefficient(params, seed, step, id_lo, id_hi, force):
    """Pairs add up -grad_i V = sum_j |U'| e^{ji}."""
    return force


@inline
def particle_multiplier(params, seed, step, pid):
    """alpha (b_f + sqrt(b_f - b_f^2) z^i), applied to -grad_i V (z is symmetric, so its sign is free)."""
    z = normal(seed, step, STREAM_PARTICLE_NORMAL, pid, 0)
    return params[RATE] * (params[BATCH] + params[NOISE] * z)
