"""Bad configurations are refused before any stepping, with one message naming the key."""
import pytest

from mpisim.config import ConfigError, RunConfig
from mpisim.core.schemes import SCHEMES

BASE = {"system": {"n": 1000, "phi": 0.6, "dim": 3},
        "dynamics": {"scheme": "sgd", "learning_rate": 0.1, "batch_fraction": 0.5}}


def with_(section, **kv):
    data = {k: dict(v) for k, v in BASE.items()}
    data.setdefault(section, {}).update(kv)
    return data


def dynamics(**kv):
    """BASE with its whole [dynamics] table replaced (another scheme takes other keys)."""
    return {**BASE, "dynamics": kv}


@pytest.mark.parametrize("data,key", [
    (with_("system", phi=0.0), "system.phi"),
    (with_("system", phi=-0.2), "system.phi"),
    (with_("system", dim=7), "system.dim"),
    (with_("system", dim=1), "system.dim"),
    (with_("system", dim=3.5), "system.dim"),
    (with_("system", n=1), "system.n"),
    (with_("system", n=8, phi=0.7), "system"),                        # box smaller than two diameters
    (with_("system", colour="red"), "system.colour"),
    (with_("dynamics", scheme="adam"), "dynamics.scheme"),
    (with_("dynamics", batch_fraction=0.0), "dynamics.batch_fraction"),
    (with_("dynamics", batch_fraction=1.5), "dynamics.batch_fraction"),
    (with_("dynamics", learning_rate=-1.0), "dynamics.learning_rate"),
    (dynamics(scheme="bro-pairwise", kick_size=-0.1), "dynamics.kick_size"),
    (dynamics(scheme="bro-pairwise"), "dynamics.kick_size"),           # missing eps
    (dynamics(scheme="bro-pairwise", kick_size=float("nan")), "dynamics.kick_size"),
    (dynamics(kick_size=0.1), "dynamics.scheme"),                      # missing scheme
    (with_("dynamics", kick_size=0.1), "dynamics.kick_size"),          # a key of another scheme
    (with_("dynamics", colour="red"), "dynamics.colour"),
    (with_("dynamics", learning_rate="fast"), "dynamics.learning_rate"),
    (with_("dynamics", potential="lj"), "dynamics.potential"),
    (with_("run", steps=-5), "run.steps"),
    (with_("run", log_every=0), "run.log_every"),
    (with_("output", path="out.txt"), "output.path"),
    (with_("system", radii=[0.5, 0.7], fractions=[0.7, 0.7]), "system.fractions"),
    (with_("system", n="many"), "system.n"),
    ({"system": {"phi": 0.5}, "dynamics": {"scheme": "gd", "learning_rate": 0.1}}, "system.n"),
    ({**BASE, "dynamic": {}}, "dynamic"),
])
def test_bad_config_names_the_key(data, key):
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict(data)
    assert str(err.value).startswith(key), str(err.value)


def test_unknown_scheme_lists_the_allowed_ones():
    with pytest.raises(ConfigError, match="bro-pairwise, bro-individual, sgd"):
        RunConfig.from_dict(with_("dynamics", scheme="adam"))


def test_round_trip_through_toml(tmp_path):
    config = RunConfig.from_dict(with_("system", radii=[0.5, 0.7]))
    path = tmp_path / "c.toml"
    path.write_text(config.to_toml())
    assert RunConfig.from_toml(path) == config


def test_overrides_apply_and_are_validated(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(RunConfig.from_dict(BASE).to_toml())
    config = RunConfig.from_toml(path, ["dynamics.learning_rate=0.05", "output.path=x.h5"])
    assert config.dynamics.learning_rate == 0.05 and config.output.path == "x.h5"
    with pytest.raises(ConfigError, match="dynamics.batch_fraction"):
        RunConfig.from_toml(path, ["dynamics.batch_fraction=2"])
    with pytest.raises(ConfigError, match="section.key=value"):
        RunConfig.from_toml(path, ["learning_rate=0.05"])


@pytest.mark.parametrize("dim", [2, 3, 4, 5, 6])
def test_box_follows_from_n_and_phi(dim):
    """L^d phi = N v_d r^d with the d-ball volume v_d = pi^(d/2) / Gamma(d/2 + 1); positions have d
    columns in the box (a unit third edge in 2d)."""
    import math
    config = RunConfig.from_dict(with_("system", dim=dim, n=5000, phi=0.4))
    edges = config.box_edges()
    L = edges[0]
    volume = math.pi ** (dim / 2) / math.gamma(dim / 2 + 1) * 0.5 ** dim
    assert math.isclose(5000 * volume / L ** dim, 0.4)
    assert edges == ([L, L, 1.0] if dim == 2 else [L] * dim)


def test_example_run_configs_validate():
    """The run configs shipped in launch/examples (not the sweep files) are valid as written."""
    from pathlib import Path
    from mpisim.config import tomllib
    examples = Path(__file__).resolve().parents[1] / "launch" / "examples"
    runs = [p for p in sorted(examples.rglob("*.toml")) if "sweep" not in tomllib.loads(p.read_text())]
    assert len(runs) >= 4
    for p in runs:
        RunConfig.from_toml(str(p))


def test_a_key_of_another_scheme_is_refused_with_the_allowed_keys():
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict(with_("dynamics", kick_size=0.1))
    assert str(err.value) == ("dynamics.kick_size: scheme sgd does not take kick_size (a key of "
                              + ", ".join(s for s in SCHEMES if "kick_size" in SCHEMES[s].keys)
                              + "); allowed: scheme, potential, learning_rate, batch_fraction, momentum")


@pytest.mark.parametrize("name", sorted(SCHEMES))
def test_dynamics_table_holds_the_scheme_keys_only(name):
    """The resolved [dynamics] (what /parameters stores) is scheme, the scheme's own keys, potential."""
    spec = SCHEMES[name]
    table = {"scheme": name, **{k: 0.1 for k in spec.required}}
    config = RunConfig.from_dict({**BASE, "dynamics": table})
    assert list(config.to_dict()["dynamics"]) == ["scheme", *spec.keys, "potential"]
    assert type(config.dynamics.parameters) is spec.parameters
    assert getattr(config.dynamics, spec.step_size_key) == 0.1


# The flat [dynamics] table that files written up to commit 557e8d6 store (every key, defaults included).
OLD_FLAT = {"scheme": "sgd", "kick_size": 0.0, "learning_rate": 0.1, "batch_fraction": 0.5,
            "potential": "linear", "momentum": 0.0, "noise_amplitude": 0.0, "temporal_correlation": 0.0,
            "spatial_correlation": "independent", "temperature": 0.0}


def test_stored_flat_dynamics_of_older_files_read():
    old = {**BASE, "dynamics": dict(OLD_FLAT)}
    with pytest.raises(ConfigError, match="dynamics.kick_size"):
        RunConfig.from_dict(old)                      # a user's config stays strict
    assert RunConfig.from_stored(old) == RunConfig.from_dict(BASE)


def test_stored_keys_the_old_table_ignored_are_dropped_whatever_their_value():
    """The flat table accepted e.g. a learning rate for a BRO run (a sweep over schemes), unused."""
    old = {**BASE, "dynamics": {**OLD_FLAT, "scheme": "bro-pairwise", "kick_size": 0.05, "learning_rate": 0.1,
                                "batch_fraction": 0.5}}
    config = RunConfig.from_stored(old)
    assert config.to_dict()["dynamics"] == {"scheme": "bro-pairwise", "kick_size": 0.05, "potential": "linear"}


def test_stored_foreign_key_with_a_value_is_still_refused():
    """A value the old table refused for this scheme (it could not be in an old file) is not dropped."""
    old = {**BASE, "dynamics": {**OLD_FLAT, "temperature": 0.5}}
    with pytest.raises(ConfigError, match="dynamics.temperature"):
        RunConfig.from_stored(old)
