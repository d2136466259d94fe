"""The registry: the one list of the dynamics. Each scheme is one module of this package that declares
its parameters, kernel flags, step-size key, equation and inline hooks (``base.py`` says what);
``dispatch.py`` builds numba's integer dispatch from this list. Adding a scheme is its file plus one
line in ``_MODULES`` (docs/architecture.md, "How to add a scheme").

* ``pair`` schemes move both particles of an overlapping pair along e^{ji} (``pair_coefficient``: +/- c;
  ``pair_coefficients``: one coefficient per particle);
* ``particle`` schemes sum ``pair_coefficient`` e^{ji} over neighbours, then scale the sum per particle by
  ``particle_multiplier``.
"""
import dataclasses
from importlib import import_module

from .base import ParameterError, Scheme, SchemeParameters  # noqa: F401

# One line per scheme; a scheme's id (its integer in the compiled dispatch) is its position here.
_MODULES = (
    "bro_pairwise",
    "bro_individual",
    "sgd",
    "rcd",
    "gd",
    "sa_pairwise",
    "sa_individual",
    "pgd",
    "spgd",
    "langevin",
    "bro_nonreciprocal",
    "bro_correlated",
    "sgd_correlated",
    "sa_pairwise_correlated",
    "ro_pairwise",
    "ro_individual",
)


def _register(names):
    schemes = {}
    for i, name in enumerate(names):
        module = import_module(f"{__name__}.{name}")
        scheme = dataclasses.replace(module.SCHEME, id=i, module=module)
        scheme.check()
        if scheme.name in schemes:
            raise TypeError(f"scheme name {scheme.name!r} registered twice ({name})")
        schemes[scheme.name] = scheme
    return schemes


#: {config name: Scheme}, in id order
SCHEMES = _register(_MODULES)
#: Scheme by id
BY_ID = tuple(SCHEMES.values())


def step_size_key(name):
    """The key that is the step size of scheme ``name`` ("kick_size" or "learning_rate"); None if unknown."""
    s = SCHEMES.get(name)
    return s.step_size_key if s is not None else None


def schemes_taking(key):
    """Names of the schemes that take the [dynamics] key ``key``."""
    return tuple(name for name, s in SCHEMES.items() if key in s.keys)


def all_parameter_fields():
    """{key: dataclasses.Field} of every scheme's parameters (the first declaration of each key)."""
    out = {}
    for s in SCHEMES.values():
        for f in dataclasses.fields(s.parameters):
            out.setdefault(f.name, f)
    return out


def parameter_labels():
    """{key: short label} of the scheme parameters that have one (sweep run names: lr=0.1_bf=0.5)."""
    return {k: f.metadata["label"] for k, f in all_parameter_fields().items() if f.metadata.get("label")}


# Files written before the schemes declared their own parameters (up to commit 557e8d6) store the flat
# [dynamics] table of that time: every key below, at these values when the scheme did not take it ...
FLAT_DYNAMICS_DEFAULTS = {"kick_size": 0.0, "learning_rate": 0.0, "batch_fraction": 1.0, "momentum": 0.0,
                          "noise_amplitude": 0.0, "temporal_correlation": 0.0,
                          "spatial_correlation": "independent", "temperature": 0.0}
# ... except these, which that table accepted with any value for a scheme that did not use them (its
# kernels never read them: e.g. learning_rate of a BRO run of a sweep that also ran sgd).
FLAT_KEYS_IGNORED = ("kick_size", "learning_rate", "batch_fraction")


def stored_dynamics(table):
    """A stored [dynamics] table as the scheme now takes it: keys of the old flat table that the scheme
    does not take are dropped when they hold the old default or were ignored then (``FLAT_KEYS_IGNORED``);
    any other value is kept, and refused by the config with its name. Unknown schemes: unchanged."""
    scheme = SCHEMES.get(table.get("scheme"))
    if scheme is None:
        return dict(table)
    return {k: v for k, v in table.items()
            if k in scheme.keys or k not in FLAT_DYNAMICS_DEFAULTS
            or (v != FLAT_DYNAMICS_DEFAULTS[k] and k not in FLAT_KEYS_IGNORED)}
