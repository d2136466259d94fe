"""The dynamics: one module per scheme, each holding the scalar function(s) of its update equation.

``SCHEMES`` maps the config name (``dynamics.scheme``) to its integer id (used for dispatch inside the
compiled pair loop, ``mpisim.core.kernels``), its kind and the parameters it needs:

* ``pair`` schemes move both particles of an overlapping pair by +/- c e^{ji} (c from ``pair_coefficient``);
* ``particle`` schemes sum ``pair_coefficient`` e^{ji} over neighbours, then scale the sum per particle by
  ``particle_multiplier``.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class SchemeSpec:
    name: str
    id: int
    kind: str              # "pair" or "particle"
    needs: tuple           # dynamics keys that must be set
    equation: str          # where it is in the paper


SCHEMES = {s.name: s for s in (
    SchemeSpec("bro-pairwise", 0, "pair", ("kick_size",), "Eq. 1, Algorithm 1"),
    SchemeSpec("bro-individual", 1, "particle", ("kick_size",), "Eq. A1, Algorithm 2"),
    SchemeSpec("sgd", 2, "pair", ("learning_rate", "batch_fraction"), "Eq. A10, Algorithm 3"),
    SchemeSpec("rcd", 3, "particle", ("learning_rate", "batch_fraction"), "Eq. A5, Algorithm 4"),
    SchemeSpec("gd", 4, "pair", ("learning_rate",), "sgd/rcd at b_f = 1"),
    SchemeSpec("sa-pairwise", 5, "pair", ("learning_rate", "batch_fraction"), "Eq. 6 / A13 (Eq. 4)"),
    SchemeSpec("sa-individual", 6, "particle", ("learning_rate", "batch_fraction"), "Eq. A8 (Eq. A3)"),
    SchemeSpec("pgd", 7, "pair", ("learning_rate", "noise_amplitude"), "docs/algorithms.md (companion study)"),
    SchemeSpec("spgd", 8, "pair", ("learning_rate", "batch_fraction", "noise_amplitude"),
               "Algorithm 3 + pgd noise"),
    SchemeSpec("langevin", 9, "pair", ("learning_rate", "temperature"), "seed 001: gd + isotropic noise"),
)}

# Options that only some schemes accept (config.Dynamics checks them).
MOMENTUM_SCHEMES = ("sgd", "rcd", "gd")
CORRELATED_NOISE_SCHEMES = ("pgd", "spgd")
