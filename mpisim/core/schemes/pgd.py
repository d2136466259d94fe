"""Perturbed gradient descent with temporally correlated noise (docs/algorithms.md, "pgd").

x^i_{k+1} = x^i_k - alpha grad_i V + sigma eta^i_k on active particles (independent), or
x^i_{k+1} = x^i_k - alpha grad_i V + sigma sum_{j in Gamma^i} (eta^i_k - eta^j_k) / sqrt(2) (reciprocal),
with the one-step-memory (MA(1)) noise eta^i_k = a xi^i_k + b m^i, xi ~ N(0, I_d), a^2 + b^2 = 1,
a b = c_t (the correlation of consecutive kicks), and m^i the xi of the particle's previous active step
(``ParticleState.aux`` columns 0..2). c_t = -1/2 is anti-PGD: eta_k = (xi_k - xi_{k-1}) / sqrt(2).
The noise (``CorrelatedNoise``, ``innovation``, ``memory_kick``) is shared with spgd.
"""
import math
from dataclasses import dataclass

from .._jit import inline
from ..rng import STREAM_NOISE, normal
from ._params import MEMORY_NEW, MEMORY_OLD, RATE, SIGMA, SPATIAL
from .base import LearningRate, Scheme, SchemeParameters, parameter


@dataclass(frozen=True, kw_only=True)
class CorrelatedNoise(SchemeParameters):
    """sigma, c_t and the spatial model of the memory noise (an option of pgd and spgd)."""
    noise_amplitude: float = parameter(slot=SIGMA, low=0.0, low_open=True,
                                       doc="sigma, units of the diameter")
    temporal_correlation: float = parameter(0.0, low=-0.5, high=0.5,
                                            doc="one-step-memory noise; -0.5 is perfectly anti-correlated")
    spatial_correlation: str = parameter("independent", choices=("independent", "reciprocal"),
                                         doc="independent particles or reciprocal pairs")

    def derived(self):
        c = self.temporal_correlation
        # a^2 + b^2 = 1 (unit variance), a b = c (lag-one correlation); c = -1/2: a = -b = 1/sqrt(2).
        return {**super().derived(),
                MEMORY_NEW: 0.5 * (math.sqrt(1 + 2 * c) + math.sqrt(1 - 2 * c)),
                MEMORY_OLD: 0.5 * (math.sqrt(1 + 2 * c) - math.sqrt(1 - 2 * c)),
                SPATIAL: -1.0 if self.pair_noise else 0.0}

    @property
    def n_aux(self):
        return max(super().n_aux, 3)       # the memory m, one column per axis

    @property
    def pair_noise(self):
        return super().pair_noise or self.spatial_correlation == "reciprocal"


@dataclass(frozen=True, kw_only=True)
class Parameters(CorrelatedNoise, LearningRate):
    """alpha and the noise."""


SCHEME = Scheme(name="pgd", kind="pair", parameters=Parameters, step_size_key="learning_rate",
                equation="docs/algorithms.md (companion study)", noise="memory")


@inline
def pair_coefficient(params, seed, step, id_lo, id_hi, force):
    """The gradient part: alpha |U'(r)| for every overlapping pair (as gd)."""
    return params[RATE] * force


@inline
def innovation(seed, step, pid, a):
    """xi^i_k along axis a: the fresh N(0, 1) draw of particle pid at this step."""
    return normal(seed, step, STREAM_NOISE, pid, a)


@inline
def memory_kick(params, xi, memory):
    """sigma eta = sigma (a xi + b m): one component of the particle's correlated noise."""
    return params[SIGMA] * (params[MEMORY_NEW] * xi + params[MEMORY_OLD] * memory)
