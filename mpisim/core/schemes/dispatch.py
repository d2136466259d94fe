"""numba's integer dispatch over the registry: the one place where scheme ids meet hooks.

numba cannot loop over a tuple of functions inside a kernel, so each dispatcher is generated as source
from ``SCHEMES`` (``if scheme == k: return <hook of scheme k>(...)``); the kernels
(``mpisim/core/kernels.py``) call these and never name a scheme. Each is a stub that numba resolves when it
types a kernel (``numba.extending.overload``): the kernels are compiled once per scheme with the id a
literal (``_jit.per_scheme``), and for a literal id the stub is that scheme's hook alone (``return
<hook of scheme k>(...)``); for a run-time id it is the whole chain. So a scheme's kernel compiles and
runs with its own hooks only. The arithmetic is the hooks' own either way (tests/test_dispatch.py calls
every scheme's hook directly, through its dispatcher and through the per-scheme kernels); from Python a
stub runs the chain.

The generated functions have no source file for numba's disk cache; they are only ever inlined into the
cached kernels (``_jit.inline_generated``).
"""
from numba.core import types
from numba.extending import overload

from .._jit import inline_generated
from . import BY_ID

#: the source of every generated function (for reading and for the tests)
SOURCES = {}


def _exec(name, source, namespace):
    exec(compile(source, f"<mpisim.core.schemes.dispatch.{name}>", "exec"), namespace)   # noqa: S102
    return namespace[name]


def _compile(name, source, hooks, args, returns):
    """The generic chain ``source`` as an inline function, wrapped in a stub that numba resolves at typing
    time: for a literal scheme id (the kernels compiled per scheme, ``_jit.per_scheme``) to
    ``returns[id]``, that scheme's own expression alone; else to the chain. Resolving it before numba
    inlines anything keeps a per-scheme compile to one scheme's hooks (the chain would inline all of
    them, and only LLVM would drop the dead ones)."""
    SOURCES[name] = source
    generic = _exec(name, source, dict(hooks))
    signature = ", ".join(("scheme",) + tuple(args))
    # from Python (tests, notebooks) the stub runs the generic chain
    stub = _exec(name, f"def {name}({signature}):\n    return _generic({signature})\n", {"_generic": inline_generated(generic)})

    def pick(scheme):
        if isinstance(scheme, types.IntegerLiteral):
            body = returns.get(scheme.literal_value, returns[None])
            return _exec(name, f"def {name}({signature}):\n    return {body}\n", dict(hooks))
        return generic

    # numba wants the typing function's parameters named as the stub's
    overload(stub, prefer_literal=True, inline="always")(
        _exec("resolve", f"def resolve({signature}):\n    return pick(scheme)\n", {"pick": pick}))

    return stub


def _chain(name, args, cases, default):
    """``def name(scheme, *args)``: for each (scheme, hook) ``if scheme == id: return hook(*args)``, else
    ``return default``."""
    lines, hooks, returns = [f"def {name}(scheme, {', '.join(args)}):"], {}, {None: default}
    for s, hook in cases:
        h = f"_{s.module.__name__.rsplit('.', 1)[-1]}_{hook}"
        hooks[h] = getattr(s.module, hook)
        returns[s.id] = f"{h}({', '.join(args)})"
        lines += [f"    if scheme == {s.id}:", f"        return {returns[s.id]}"]
    lines.append(f"    return {default}")
    return _compile(name, "\n".join(lines) + "\n", hooks, args, returns)


def _predicate(name, ids):
    expr = " or ".join(f"scheme == {i}" for i in ids) or "False"
    returns = {None: "False", **{i: "True" for i in ids}}
    return _compile(name, f"def {name}(scheme):\n    return {expr}\n", {}, (), returns)


def _hook_chain(name, hook, args, schemes, default):
    return _chain(name, args, [(s, hook) for s in schemes], default)


_PAIR_ARGS = ("params", "seed", "step", "id_lo", "id_hi", "force")

_RECIPROCAL = [s for s in BY_ID if s.reciprocal]
_TWO_SIDED = [s for s in BY_ID if not s.reciprocal]

#: c = pair_coefficient(scheme, params, seed, step, id_lo, id_hi, force): +c e^{ji} to i, -c e^{ji} to j
pair_coefficient = _hook_chain("pair_coefficient", "pair_coefficient", _PAIR_ARGS, _RECIPROCAL, "0.0")
#: (c_lo, c_hi) = pair_coefficients(scheme, ...): the coefficients of the pair's smaller-id and larger-id
#: particle, for the schemes whose two particles get different kicks (``is_two_sided``)
pair_coefficients = _hook_chain("pair_coefficients", "pair_coefficients", _PAIR_ARGS, _TWO_SIDED, "0.0, 0.0")
is_two_sided = _predicate("is_two_sided", [s.id for s in _TWO_SIDED])

# Random organization (schemes/ro_pairwise.py, ro_individual.py): kicks in random directions, not along
# e^{ji}; the hooks give Gaussian components, the kernels divide by their norm.
_PAIR_DIRECTION = [s for s in BY_ID if hasattr(s.module, "pair_kick_direction")]
_PARTICLE_KICK = [s for s in BY_ID if hasattr(s.module, "particle_kick_direction")]
#: two-sided schemes whose kicks (sizes c_lo, c_hi) point along random directions g_lo, g_hi
has_random_direction = _predicate("has_random_direction", [s.id for s in _PAIR_DIRECTION])
#: (g_lo, g_hi) = pair_kick_direction(scheme, params, seed, step, id_lo, id_hi, a): axis a of the two
#: Gaussian directions; the smaller id gets +c_lo g_lo / |g_lo|, the larger id -c_hi g_hi / |g_hi|
pair_kick_direction = _hook_chain("pair_kick_direction", "pair_kick_direction",
                                  ("params", "seed", "step", "id_lo", "id_hi", "a"), _PAIR_DIRECTION,
                                  "0.0, 0.0")
#: one kick per active particle, u^i g^i / |g^i| (apply_step)
has_particle_kick = _predicate("has_particle_kick", [s.id for s in _PARTICLE_KICK])
particle_kick_size = _hook_chain("particle_kick_size", "particle_kick_size", ("params", "seed", "step", "pid"),
                                 _PARTICLE_KICK, "0.0")
particle_kick_direction = _hook_chain("particle_kick_direction", "particle_kick_direction",
                                      ("seed", "step", "pid", "a"), _PARTICLE_KICK, "0.0")

_PARTICLE = [s for s in BY_ID if s.kind == "particle"]
_MEMORY = [s for s in BY_ID if s.noise == "memory"]
_ISOTROPIC = [s for s in BY_ID if s.noise == "isotropic"]

#: the per-particle factor of a particle scheme (1 for the others)
particle_multiplier = _hook_chain("particle_multiplier", "particle_multiplier",
                                  ("params", "seed", "step", "pid"), _PARTICLE, "1.0")
is_particle_scheme = _predicate("is_particle_scheme", [s.id for s in _PARTICLE])
#: memory noise (pgd, spgd): the fresh draw xi and one component of the kick sigma (a xi + b m)
has_memory_noise = _predicate("has_memory_noise", [s.id for s in _MEMORY])
innovation = _hook_chain("innovation", "innovation", ("seed", "step", "pid", "a"), _MEMORY, "0.0")
memory_kick = _hook_chain("memory_kick", "memory_kick", ("params", "xi", "memory"), _MEMORY, "0.0")
#: isotropic noise on every particle (langevin)
has_isotropic_noise = _predicate("has_isotropic_noise", [s.id for s in _ISOTROPIC])
noise_kick = _hook_chain("noise_kick", "noise_kick", ("params", "seed", "step", "pid", "a"), _ISOTROPIC, "0.0")
