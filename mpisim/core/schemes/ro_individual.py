"""Random organization (RO), one kick per active particle (Corte, Chaikin, Gollub & Pine, Nat. Phys. 4,
420 (2008); Hexner & Levine, PRL 114, 110602 (2015); docs/algorithms.md, "Random organization").

x^i_{k+1} = x^i_k + u^i n^i for every particle that overlaps at least one other at x_k, once whatever its
number of overlaps: u^i ~ U(0, eps), n^i = g / |g| a uniformly random unit vector (g ~ N(0, I_d)). The
pair pass only finds the active particles (no kick along the line of centres); apply_step adds the kick.
"""
from dataclasses import dataclass

from .._jit import inline
from ..rng import STREAM_PARTICLE_DIRECTION, STREAM_PARTICLE_UNIFORM, normal, uniform
from ._params import KICK
from .base import KickSize, Scheme


@dataclass(frozen=True, kw_only=True)
class Parameters(KickSize):
    """eps."""


SCHEME = Scheme(name="ro-individual", kind="pair", parameters=Parameters, step_size_key="kick_size",
                equation="Corte et al. 2008, Hexner & Levine 2015; docs/algorithms.md")


@inline
def pair_coefficient(params, seed, step, id_lo, id_hi, force):
    """No kick along e^{ji}: an overlap only makes both particles active."""
    return 0.0


@inline
def particle_kick_size(params, seed, step, pid):
    """u^i = eps U[0, 1)."""
    return params[KICK] * uniform(seed, step, STREAM_PARTICLE_UNIFORM, pid, 0)


@inline
def particle_kick_direction(seed, step, pid, a):
    """g^i along axis a (the kernel divides by |g^i|)."""
    return normal(seed, step, STREAM_PARTICLE_DIRECTION, pid, a)
