"""Heavy-ball momentum, an option of sgd, rcd and gd (seed paper 002; docs/algorithms.md, "Momentum").

v^i_{k+1} = beta v^i_k - alpha g^i_k, x^i_{k+1} = x^i_k + v^i_{k+1}, where -alpha g^i_k is the displacement
the plain scheme would make (selection included). v lives in ``ParticleState.aux`` columns 0..2.
A scheme takes the option by listing ``Momentum`` among the bases of its ``Parameters``.
"""
from dataclasses import dataclass

from .._jit import inline
from ._params import MOMENTUM
from .base import SchemeParameters, parameter

# Velocities below the fixed-point displacement resolution (kernels.FIXED_SCALE = 2^40) are set to 0, so
# that a run without overlaps comes to rest in finitely many steps instead of decaying as beta^k forever.
V_FLOOR = 2.0 ** -40


@dataclass(frozen=True, kw_only=True)
class Momentum(SchemeParameters):
    """beta in [0, 1); 0 = off (the plain scheme: no velocity column, the stateless path)."""
    momentum: float = parameter(0.0, slot=MOMENTUM, low=0.0, high=1.0, high_open=True,
                                doc="beta, heavy-ball momentum; 0 = off")

    @property
    def n_aux(self):
        return max(super().n_aux, 3 if self.momentum > 0 else 0)

    @property
    def moving(self):
        return super().moving or self.momentum > 0


@inline
def velocity(beta, v, displacement):
    """beta v + displacement, flushed to 0 below V_FLOOR."""
    w = beta * v + displacement
    if -V_FLOOR < w < V_FLOOR:
        return 0.0
    return w
