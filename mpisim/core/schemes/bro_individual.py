"""Individual-particle BRO (paper Eq. A1, Algorithm 2).

x^i_{k+1} = x^i_k + u^i sum_{j in Gamma^i} e^{ji}, with u^i ~ U(0, eps) one per particle and e^{ji} the
unit vector from j to i. The pair pass sums unit vectors (coefficient 1), the particle pass scales them.
"""
from dataclasses import dataclass

from .._jit import inline
from ..rng import STREAM_PARTICLE_UNIFORM, uniform
from ._params import KICK
from .base import KickSize, Scheme


@dataclass(frozen=True, kw_only=True)
class Parameters(KickSize):
    """eps."""


SCHEME = Scheme(name="bro-individual", kind="particle", parameters=Parameters, step_size_key="kick_size",
                equation="Eq. A1, Algorithm 2")


@inline
def pair_coefficient(params, seed, step, id_lo, id_hi, force):
    """Each overlapping neighbour contributes a unit vector."""
    return 1.0


@inline
def particle_multiplier(params, seed, step, pid):
    """u^i = eps * U[0, 1)."""
    return params[KICK] * uniform(seed, step, STREAM_PARTICLE_UNIFORM, pid, 0)
