"""Random coordinate descent (paper Eq. A5, Algorithm 4).

x^i_{k+1} = x^i_k - alpha theta^i_k grad_i V, with theta^i_k = 1 with probability b_f (one draw per
particle and step). Inactive particles have grad_i V = 0 and do not move.
"""
from dataclasses import dataclass

from .._jit import inline
from ..rng import STREAM_PARTICLE_UNIFORM, uniform
from ._params import BATCH, RATE
from .base import BatchFraction, LearningRate, Scheme
from .momentum import Momentum


@dataclass(frozen=True, kw_only=True)
class Parameters(Momentum, BatchFraction, LearningRate):
    """alpha, b_f and the momentum option."""


SCHEME = Scheme(name="rcd", kind="particle", parameters=Parameters, step_size_key="learning_rate",
                equation="Eq. A5, Algorithm 4")


@inline
def pair_coefficient(params, seed, step, id_lo, id_hi, force):
    """Pairs add up -grad_i V = sum_j |U'| e^{ji}."""
    return force


@inline
def particle_multiplier(params, seed, step, pid):
    """alpha theta^i."""
    if uniform(seed, step, STREAM_PARTICLE_UNIFORM, pid, 0) < params[BATCH]:
        return params[RATE]
    return 0.0
