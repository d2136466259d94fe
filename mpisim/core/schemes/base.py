"""What a scheme module declares, and the options several schemes share (docs/architecture.md, "How to
add a scheme").

A scheme module holds, in one file:

* ``Parameters``: a frozen, keyword-only dataclass of its ``[dynamics]`` keys. Each key is a
  ``parameter(...)`` field carrying its bounds, its slot in the kernels' float vector (``_params.py``) and
  a short label; options shared by several schemes are mixins defined once (``KickSize``,
  ``LearningRate``, ``BatchFraction`` here, ``momentum.Momentum``, ``pgd.CorrelatedNoise``).
* ``SCHEME = Scheme(...)``: its name, kind, step-size key, equation and kernel flags.
* its inline hooks: ``pair_coefficient`` (one coefficient c: +c e^{ji} to i, -c e^{ji} to j) or
  ``pair_coefficients`` (c_lo, c_hi: one per particle of the pair, by id order); a particle scheme also
  ``particle_multiplier``; the noise models ``innovation`` + ``memory_kick`` ("memory") or ``noise_kick``
  ("isotropic"); random organization ``pair_kick_direction`` (with ``pair_coefficients`` as the two kick
  sizes) or ``particle_kick_size`` + ``particle_kick_direction`` (one kick per active particle).

Core code: no ``ConfigError`` here (it lives above, in ``mpisim.config``); bad values raise
``ParameterError``, whose message starts with the key, and ``config`` re-raises it as a ``ConfigError``.
"""
import dataclasses
import math
from dataclasses import MISSING, dataclass, field

from ._params import BATCH, KICK, NOISE, RATE

KINDS = ("pair", "particle")
NOISE_MODELS = ("", "memory", "isotropic")


class ParameterError(ValueError):
    """A scheme parameter that cannot run; the message starts with ``dynamics.<key>``."""


def parameter(default=MISSING, *, slot=None, low=None, high=None, low_open=False, high_open=False,
              choices=None, label="", doc=""):
    """A scheme parameter: its default (none = required), allowed range [low, high] (open ends with
    low_open / high_open) or set of choices, its slot in the kernels' parameter vector (None: only its
    derived values go there) and a short label (run directory names of sweeps; none: the key itself)."""
    return field(default=default, metadata={"slot": slot, "low": low, "high": high, "low_open": low_open,
                                            "high_open": high_open, "choices": choices, "label": label,
                                            "doc": doc})


def allowed_values(f):
    """The allowed values of parameter field f as text: "> 0", "in [-0.5, 0.5]", "one of ..."."""
    m = f.metadata
    if m.get("choices"):
        return "one of " + ", ".join(f'"{c}"' for c in m["choices"])
    low, high = m.get("low"), m.get("high")
    if low is not None and high is not None:
        return f"in {'(' if m['low_open'] else '['}{low:g}, {high:g}{')' if m['high_open'] else ']'}"
    if low is not None:
        return f"{'>' if m['low_open'] else '>='} {low:g}"
    if high is not None:
        return f"{'<' if m['high_open'] else '<='} {high:g}"
    return "any value"


def _in_range(f, value):
    m = f.metadata
    if m.get("choices"):
        return value in m["choices"]
    low, high = m.get("low"), m.get("high")
    # Written so that NaN fails every bound.
    if low is not None and not (value > low if m["low_open"] else value >= low):
        return False
    if high is not None and not (value < high if m["high_open"] else value <= high):
        return False
    return True


@dataclass(frozen=True, kw_only=True)
class SchemeParameters:
    """Base of every scheme's ``Parameters``: range checks, the kernel vector, value-dependent flags.

    Mixins that derive kernel values or flags extend ``derived``, ``n_aux``, ``moving`` or ``pair_noise``
    and call ``super()``, so that any combination of options composes."""

    def validate(self, scheme):
        """Raise ParameterError naming the first key outside its range (``scheme``: for the message)."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not _in_range(f, value):
                hint = f" ({f.metadata['doc']})" if f.metadata.get("doc") else ""
                raise ParameterError(f"dynamics.{f.name}: scheme {scheme} needs {f.name} {allowed_values(f)}"
                                     f"{hint}, got {value!r}")

    def derived(self):
        """{slot: value} of the kernel values computed from several keys (e.g. sqrt(b_f - b_f^2))."""
        return {}

    def kernel_vector(self, size):
        """The float64 parameter vector (``size`` slots, ``_params.py``) that the hooks read."""
        import numpy as np
        vec = np.zeros(size)
        for f in dataclasses.fields(self):
            if f.metadata.get("slot") is not None:
                vec[f.metadata["slot"]] = getattr(self, f.name)
        for slot, value in self.derived().items():
            vec[slot] = value
        return vec

    @property
    def n_aux(self):
        """Per-particle state columns (``ParticleState.aux``): a velocity, a noise memory."""
        return 0

    @property
    def moving(self):
        """Whether particles may move without overlapping (then a run is absorbed only when none does)."""
        return False

    @property
    def pair_noise(self):
        """Whether the step needs ``kernels.noise_pair_pass`` (reciprocal pair noise of a memory model)."""
        return False


# ------------------------------------------------------------------------------------- shared options
@dataclass(frozen=True, kw_only=True)
class KickSize(SchemeParameters):
    """eps of the BRO schemes."""
    kick_size: float = parameter(slot=KICK, low=0.0, low_open=True, label="eps",
                                 doc="eps, the largest kick, units of the diameter")


@dataclass(frozen=True, kw_only=True)
class LearningRate(SchemeParameters):
    """alpha of the gradient-based schemes."""
    learning_rate: float = parameter(slot=RATE, low=0.0, low_open=True, label="lr", doc="alpha")


@dataclass(frozen=True, kw_only=True)
class BatchFraction(SchemeParameters):
    """b_f: the probability that a pair (sgd) or particle (rcd) is in the batch."""
    batch_fraction: float = parameter(1.0, slot=BATCH, low=0.0, low_open=True, high=1.0, label="bf", doc="b_f")

    def derived(self):
        b = self.batch_fraction
        # sqrt(b_f - b_f^2): amplitude of the selection noise (Eq. A11); max() guards rounding at b_f = 1.
        return {**super().derived(), NOISE: math.sqrt(max(b - b * b, 0.0))}


# ---------------------------------------------------------------------------------------- the record
@dataclass(frozen=True)
class Scheme:
    """What the registry knows of a scheme (``SCHEME`` in its module; ``id`` and ``module`` are set by
    the registry, ``mpisim/core/schemes/__init__.py``).

    kind: "pair" (the pair pass moves both particles of an overlapping pair) or "particle" (it sums unit
    coefficients per particle, ``particle_multiplier`` scales the sum); noise: "" (none), "memory"
    (temporally correlated per-particle noise, ``innovation`` + ``memory_kick``, memory in ``aux``) or
    "isotropic" (``noise_kick`` on every particle); always_moving: never absorbed (noise on every
    particle); step_size_key: the parameter that is the scheme's step size (analysis, sweeps)."""
    name: str
    kind: str
    parameters: type
    step_size_key: str
    equation: str
    noise: str = ""
    always_moving: bool = False
    id: int = -1
    module: object = None

    @property
    def keys(self):
        """The scheme's own [dynamics] keys, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(self.parameters))

    @property
    def required(self):
        """The keys without a default."""
        return tuple(f.name for f in dataclasses.fields(self.parameters)
                     if f.default is MISSING and f.default_factory is MISSING)

    @property
    def reciprocal(self):
        """Whether the pair hook is one coefficient for both particles (``pair_coefficient``)."""
        return hasattr(self.module, "pair_coefficient")

    def check(self):
        """TypeError if the module does not provide what its declaration promises (at import)."""
        m, where = self.module, f"scheme {self.name!r} ({getattr(self.module, '__name__', '?')})"
        if self.kind not in KINDS:
            raise TypeError(f"{where}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.noise not in NOISE_MODELS:
            raise TypeError(f"{where}: noise must be one of {NOISE_MODELS}, got {self.noise!r}")
        if not (dataclasses.is_dataclass(self.parameters) and issubclass(self.parameters, SchemeParameters)):
            raise TypeError(f"{where}: parameters must be a SchemeParameters dataclass")
        if self.step_size_key not in self.keys:
            raise TypeError(f"{where}: step_size_key {self.step_size_key!r} is not one of its keys {self.keys}")
        if hasattr(m, "pair_coefficient") == hasattr(m, "pair_coefficients"):
            raise TypeError(f"{where}: define exactly one of pair_coefficient, pair_coefficients")
        if hasattr(m, "pair_kick_direction") and not hasattr(m, "pair_coefficients"):
            raise TypeError(f"{where}: pair_kick_direction needs the kick sizes of pair_coefficients")
        if hasattr(m, "particle_kick_direction") and not hasattr(m, "particle_kick_size"):
            raise TypeError(f"{where}: particle_kick_direction needs particle_kick_size")
        needs = {"particle": ("particle_multiplier",)}.get(self.kind, ()) + \
            {"memory": ("innovation", "memory_kick"), "isotropic": ("noise_kick",)}.get(self.noise, ())
        for hook in needs:
            if not hasattr(m, hook):
                raise TypeError(f"{where}: a {self.kind} scheme with noise {self.noise!r} needs the hook {hook}")
