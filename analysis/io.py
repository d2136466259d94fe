"""Reading mpisim run files (H5MD, docs/file-format.md) and collections of runs.

A *run* is one HDF5 file written by the simulator. A *collection* is given as any mix of

* paths of run files,
* glob patterns (``runs/**/*.h5``),
* directories (every ``*.h5`` below them, or their ``manifest.tsv`` if they hold one),
* sweep manifests (``manifest.tsv``, written by ``launch/sweep``): a tab-separated text file with a
  header line and one row per run, with at least the column ``path`` (the run file, relative to the
  manifest's directory) and usually ``status``.

Runs are grouped by their parameters (scheme, N, phi, kick size / learning rate, batch fraction,
potential, dimension), read from the file's ``/parameters`` attribute ``config_toml``; the seeds of
one group are the independent samples that measurements average over.

All lengths are in units of the (mean) particle diameter 2R, as in the files; time is the step k.

Examples
--------
>>> import tempfile, pathlib
>>> from analysis.synthetic import write_run
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> path = write_run(d / "a.h5", n=64, phi=0.3, seed=1, steps=100, log_every=10)
>>> run = load_run(path)
>>> run.params.scheme, run.params.n, run.params.phi
('sgd', 64, 0.3)
>>> steps, f = run.activity()
>>> steps[:3]
array([ 0, 10, 20])
"""
from __future__ import annotations

import csv
import glob
import math
import os
import tomllib
import warnings
from collections import OrderedDict
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Iterable, Sequence

import h5py
import numpy as np

from mpisim.core.schemes import step_size_key, stored_dynamics
from mpisim.io import format as fmt

from .errors import AnalysisError, RunFileError


def takes_kick_size(scheme: str) -> bool:
    """Whether the scheme's step size is the kick size epsilon (BRO), as its module declares; the
    others take a learning rate alpha (mpisim.core.schemes)."""
    return step_size_key(scheme) == "kick_size"


def step_size_of(scheme: str, kick_size, learning_rate):
    """The scheme's step size (epsilon for BRO, alpha otherwise: its ``step_size_key``); a zero or
    missing value falls back to the other one (also for a scheme this mpisim does not know)."""
    first, second = (kick_size, learning_rate) if takes_kick_size(scheme) else (learning_rate, kick_size)
    if first:
        return first
    return second if second else first

def effective_kick_of(scheme: str, kick_size, learning_rate, batch_fraction=None):
    """epsilon for BRO, alpha * b_f otherwise (b_f unset: 1; a file with only a kick size: that), the
    kick size the paper maps a learning rate to (after Eq. 6); RunParams.effective_kick."""
    if takes_kick_size(scheme) and kick_size:
        return kick_size
    if learning_rate:
        return learning_rate * (1.0 if batch_fraction is None else batch_fraction)
    return kick_size


def cell_number(text) -> float:
    """A CSV cell as read (text) as a float; an empty or missing cell is NaN."""
    return float(text) if text not in ("", None) else math.nan


def effective_kick_of_row(row: dict) -> float:
    """:func:`effective_kick_of` of a CSV table's row as read (text; an empty cell is NaN): an activity
    table's kick_size and learning_rate, or a phic table's step_size (epsilon or alpha by scheme)."""
    def number(key):
        return cell_number(row.get(key))
    kick, rate = (number("step_size"),) * 2 if "step_size" in row else (number("kick_size"), number("learning_rate"))
    b_f = number("batch_fraction")
    return effective_kick_of(row["scheme"], kick, rate, b_f if math.isfinite(b_f) else None)


#: manifest ``status`` values (lower case) of rows that are skipped: runs that did not finish
UNFINISHED_STATUSES = frozenset(
    {"failed", "error", "running", "pending", "queued", "submitted", "killed", "timeout",
     "cancelled", "canceled", "missing"}
)

#: parameters that define a group of runs (the seed is what varies inside a group)
GROUP_FIELDS = ("scheme", "dim", "n", "phi", "kick_size", "learning_rate", "batch_fraction",
                "potential")


def _read_edges(fh, frame: int = -1) -> np.ndarray | None:
    """Box edges of snapshot ``frame`` (:func:`mpisim.io.format.read_box`), or None."""
    if fmt.EDGES not in fh:
        return None
    try:
        return np.asarray(fmt.read_box(fh, frame), dtype=np.float64)
    except IndexError:   # fewer frames than asked for: the last box
        return np.asarray(fmt.read_box(fh, -1), dtype=np.float64)


def _get(section: dict, *names, default=None):
    for name in names:
        if name in section:
            return section[name]
    return default


def _opt_float(value):
    return None if value is None else float(value)


@dataclass(frozen=True)
class RunParameters:
    """The parameters of one run, read from ``/parameters`` ``config_toml``.

    Attributes are ``None`` when the configuration does not set them (for example ``kick_size`` for
    SGD). Lengths are in diameters.
    """

    scheme: str
    dim: int
    n: int
    phi: float
    radius: float
    seed: int | None
    kick_size: float | None
    learning_rate: float | None
    batch_fraction: float | None
    potential: str
    steps: int | None
    log_every: int | None

    @classmethod
    def from_config(cls, config: dict) -> "RunParameters":
        """Build from the parsed TOML configuration (sections system, dynamics, run)."""
        system = config.get("system", {})
        # Files written before the schemes declared their own keys hold every key of the old flat table
        # (0.0 for a kick size of sgd): keep the scheme's own, so that old and new files group together.
        dynamics = stored_dynamics(config.get("dynamics", {}))
        run = config.get("run", {})
        try:
            scheme = str(_get(dynamics, "scheme"))
            dim = int(_get(system, "dim", "dimension"))
            n = int(_get(system, "n", "N"))
            phi = float(_get(system, "phi", "packing_fraction"))
        except (TypeError, ValueError) as err:
            raise RunFileError(
                "configuration lacks one of dynamics.scheme, system.dim, system.n, system.phi"
            ) from err
        seed = _get(system, "seed")
        steps = _get(run, "steps")
        log_every = _get(run, "log_every")
        return cls(
            scheme=scheme,
            dim=dim,
            n=n,
            phi=phi,
            radius=float(_get(system, "radius", default=0.5)),
            seed=None if seed is None else int(seed),
            kick_size=_opt_float(_get(dynamics, "kick_size", "eps", "epsilon")),
            learning_rate=_opt_float(_get(dynamics, "learning_rate", "alpha")),
            batch_fraction=_opt_float(_get(dynamics, "batch_fraction", "b_f")),
            potential=str(_get(dynamics, "potential", default="linear")),
            steps=None if steps is None else int(steps),
            log_every=None if log_every is None else int(log_every),
        )

    @property
    def step_size(self) -> float | None:
        """The scheme's own step size: kick size epsilon (BRO) or learning rate alpha (all others).

        Older files hold every key with its default, so 0.0 counts as unset.
        """
        return step_size_of(self.scheme, self.kick_size, self.learning_rate)

    @property
    def effective_kick(self) -> float | None:
        """The BRO-equivalent kick size: epsilon for BRO, alpha * b_f otherwise (paper, after Eq. 6).

        The paper matches SGD (RCD) to pairwise (individual-particle) BRO with alpha = eps / b_f,
        b_f = 3/4, so alpha * b_f is the kick size on the same axis as BRO's epsilon (Fig. 5a, S1).
        """
        return effective_kick_of(self.scheme, self.kick_size, self.learning_rate, self.batch_fraction)

    @property
    def box_length(self) -> float:
        """Edge of the cubic box implied by N, phi and R (diameters); the file's box is authoritative."""
        v1 = math.pi ** (self.dim / 2) / math.gamma(self.dim / 2 + 1) * self.radius ** self.dim
        return (self.n * v1 / self.phi) ** (1.0 / self.dim)

    @property
    def linear_size(self) -> float:
        """L = N^(1/d), the finite-size-scaling length used with the Manna exponents."""
        return self.n ** (1.0 / self.dim)

    def key(self, exclude: Sequence[str] = ("seed",)) -> tuple:
        """Hashable group key: ``((name, value), ...)`` over :data:`GROUP_FIELDS` minus ``exclude``."""
        return tuple((f, getattr(self, f)) for f in GROUP_FIELDS if f not in exclude)

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class Run:
    """One run file: parameters, provenance, observables and snapshots.

    The file is opened for each read and closed again, so a ``Run`` holds no HDF5 handle.

    Parameters
    ----------
    path : str or Path
        An mpisim output file.

    Raises
    ------
    RunFileError
        If the path does not exist, is not HDF5, or lacks ``/parameters`` ``config_toml``.
    """

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.exists():
            raise RunFileError(f"no such file: {self.path}")
        if self.path.is_dir():
            raise RunFileError(f"is a directory, not a run file: {self.path}")
        try:
            fh = h5py.File(self.path, "r")
        except OSError as err:
            raise RunFileError(f"not an HDF5 file: {self.path}") from err
        with fh:
            if fmt.PARAMETERS not in fh or fmt.CONFIG_TOML not in fh[fmt.PARAMETERS].attrs:
                raise RunFileError(
                    f"not an mpisim run (no /parameters config_toml): {self.path}"
                )
            try:
                self.config = tomllib.loads(fmt.text(fh[fmt.PARAMETERS].attrs[fmt.CONFIG_TOML]))
            except tomllib.TOMLDecodeError as err:
                raise RunFileError(f"unreadable config_toml in {self.path}: {err}") from err
            self.provenance = fmt.read_provenance(fh)
            self._observables = fmt.series_names(fh)
            self._has_positions = fmt.has_positions(fh)
            self._has_structure_factor = fmt.structure_factor_path(fh) is not None
        self.params = RunParameters.from_config(self.config)
        self.continues = None          # the original run's path, if this file is its continuation (load_runs)

    def __repr__(self):
        p = self.params
        return (f"Run({str(self.path)!r}, scheme={p.scheme}, n={p.n}, phi={p.phi}, "
                f"seed={p.seed})")

    # -- provenance ---------------------------------------------------------------------------
    @property
    def absorbed(self) -> bool:
        """Whether the run reached an absorbing state (provenance ``absorbed``)."""
        return bool(self.provenance.get("absorbed", False))

    @property
    def absorbed_step(self) -> int | None:
        """The step at which f_a first reached 0, or None (provenance ``absorbed_step``, -1 -> None)."""
        s = self.provenance.get("absorbed_step", -1)
        s = int(s) if s is not None else -1
        return s if (self.absorbed and s >= 0) else None

    # -- observables ----------------------------------------------------------------------------
    @property
    def observables(self) -> list[str]:
        """Names of the time series under ``/observables``."""
        return list(self._observables)

    def observable(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(step int64 [n], value [n])`` of ``/observables/<name>``."""
        if name not in self._observables:
            raise RunFileError(f"{self.path} has no /{fmt.observable_path(name)}")
        with h5py.File(self.path, "r") as fh:
            steps, values = fmt.read_series(fh, name)
            return steps, np.asarray(values)

    def activity(self) -> tuple[np.ndarray, np.ndarray]:
        """The activity f_a(k) = overlapping particles / N: ``(steps, f_a)``."""
        steps, f = self.observable("activity")
        return steps, f.astype(np.float64)

    # -- structure factor -----------------------------------------------------------------------
    @property
    def has_structure_factor(self) -> bool:
        """Whether the file holds S(k) measurements (``[structure_factor]`` in the run, or ``mpisim sofk``)."""
        return self._has_structure_factor

    def structure_factor(self) -> dict:
        """The stored S(k) measurements (:func:`mpisim.io.format.read_structure_factor`): ``step`` int64
        [m], ``k``, ``k_mean`` float64 [bins], ``count`` int64 [bins], ``S`` float64 [m, bins], ``attrs``.

        Read from ``/structure_factor`` (or ``/observables/structure_factor`` in files written before
        2026-12)."""
        sk = fmt.read_structure_factor(self.path)
        if sk is None:
            raise RunFileError(f"{self.path} has no S(k) measurements (/{fmt.STRUCTURE_FACTOR})")
        return sk

    def universe(self):
        """An MDAnalysis Universe of this run's snapshots (see :func:`universe`)."""
        return universe(self.path)

    # -- snapshots ------------------------------------------------------------------------------
    @property
    def has_positions(self) -> bool:
        return self._has_positions

    def _require_positions(self):
        if not self._has_positions:
            raise RunFileError(f"{self.path} has no /{fmt.POSITION} snapshots")

    @property
    def frame_steps(self) -> np.ndarray:
        """Steps of the stored snapshots, int64 [frames]."""
        self._require_positions()
        with h5py.File(self.path, "r") as fh:
            return fmt.frame_steps(fh)

    @property
    def box(self) -> np.ndarray:
        """Box edge lengths, float64 [d] (diameters)."""
        with h5py.File(self.path, "r") as fh:
            e = _read_edges(fh)
        return e if e is not None else np.full(self.params.dim, self.params.box_length)

    @property
    def radii(self) -> np.ndarray:
        """Particle radii ordered by id, float64 [N] (diameters)."""
        with h5py.File(self.path, "r") as fh:
            if fmt.RADIUS in fh:
                return np.asarray(fh[fmt.RADIUS][()], dtype=np.float64)
        return np.full(self.params.n, self.params.radius)

    def positions(self, frame: int = -1, unwrapped: bool = False) -> np.ndarray:
        """Positions of snapshot ``frame`` (negative counts from the end), float64 [N, d].

        Wrapped positions lie in [0, L); ``unwrapped=True`` adds ``image * edges``.
        """
        self._require_positions()
        with h5py.File(self.path, "r") as fh:
            value = fmt.positions_dataset(fh)
            nf = value.shape[0]
            if not -nf <= frame < nf:
                raise AnalysisError(f"{self.path} has {nf} snapshots, no frame {frame}")
            x = np.asarray(value[frame], dtype=np.float64)
            if unwrapped:
                if not fmt.has_images(fh):
                    raise RunFileError(f"{self.path} has no /{fmt.IMAGE}")
                img = np.asarray(fmt.read_images(fh, frame), dtype=np.float64)
                x = x + img * _read_edges(fh, frame)
        return x

    def unwrapped_trajectory(self) -> tuple[np.ndarray, np.ndarray]:
        """``(steps [frames], unwrapped positions [frames, N, d])`` of every snapshot."""
        self._require_positions()
        with h5py.File(self.path, "r") as fh:
            steps = fmt.frame_steps(fh)
            x = np.asarray(fmt.positions_dataset(fh)[()], dtype=np.float64)
            if fmt.has_images(fh):
                img = np.asarray(fmt.read_images(fh, ()), dtype=np.float64)
                edges = np.array([_read_edges(fh, f) for f in range(x.shape[0])])
                x = x + img * edges[:, None, :]
            else:
                raise RunFileError(f"{self.path} has no /{fmt.IMAGE} to unwrap positions")
        return steps, x


def universe(path):
    """An MDAnalysis Universe of a run file in one call, 2-d and 3-d
    (:func:`mpisim.io.viewers.mdanalysis_universe`): wrapped positions in diameters, a 2-d system padded
    with z = 0 and a third box edge of 1, ``radii`` and ``types`` (species) on the atoms,
    ``ts.data["step"]`` the frame's step. Needs MDAnalysis."""
    from mpisim.io.viewers import mdanalysis_universe
    return mdanalysis_universe(path)


def load_run(path) -> Run:
    """Open one run file (see :class:`Run`)."""
    return Run(path)


def read_manifest(path, statuses: Iterable[str] | None = None) -> list[Path]:
    """Run paths listed in a sweep manifest.

    Parameters
    ----------
    path : str or Path
        ``manifest.tsv``: tab-separated, a header line, column ``path`` (relative to the manifest's
        directory, or absolute) and optionally ``status``.
    statuses : iterable of str, optional
        Keep only rows with one of these statuses (case-insensitive). By default every row is kept
        except those whose status is one of :data:`UNFINISHED_STATUSES` (failed, running, ...).

    Returns
    -------
    list of Path
        The run files, in manifest order. Rows skipped for their status are reported with a warning.
    """
    path = Path(path)
    if not path.exists():
        raise RunFileError(f"no such manifest: {path}")
    keep = None if statuses is None else {s.lower() for s in statuses}
    out, skipped = [], []
    with open(path, newline="") as fh:
        reader = csv.DictReader((line for line in fh if not line.startswith("#")), delimiter="\t")
        if reader.fieldnames is None or "path" not in reader.fieldnames:
            raise RunFileError(f"manifest {path} has no 'path' column in its header line")
        for row in reader:
            status = (row.get("status") or "").strip().lower()
            ok = (status in keep) if keep is not None else (status not in UNFINISHED_STATUSES)
            p = Path(row["path"].strip())
            if not p.is_absolute():
                p = path.parent / p
            (out if ok else skipped).append(p)
    if skipped:
        warnings.warn(f"{path}: skipped {len(skipped)} runs by status", stacklevel=2)
    return out


def _expand(item) -> list[Path]:
    s = str(item)
    p = Path(s)
    if p.is_file():
        if p.suffix in (".tsv", ".txt") or p.name.startswith("manifest"):
            return read_manifest(p)
        return [p]
    if p.is_dir():
        if (p / "manifest.tsv").is_file():
            return read_manifest(p / "manifest.tsv")
        return sorted(Path(q) for q in glob.glob(os.path.join(s, "**", "*.h5"), recursive=True))
    matches = sorted(Path(q) for q in glob.glob(s, recursive=True))
    if not matches:
        raise RunFileError(f"no such file, directory or matching files: {s}")
    out = []
    for m in matches:
        out.extend(_expand(m) if m.is_dir() else [m])
    return out


def load_runs(inputs, continued=None) -> list[Run]:
    """Open every run named by ``inputs`` (paths, globs, directories, manifests; see module doc).

    Duplicates are dropped; the order is that of the inputs. ``continued``: a directory of continuations
    (``launch/steady_continuation.py OUT ...``: the same config and seed run longer into ``OUT/<run
    directory name>/``), or a list of them (one per study: run directory names repeat across studies);
    a run with a finished continuation there, of the same parameters and seed, is read from it instead.
    A same-named continuation of other parameters is another study's and is passed over, unless no run
    at all is read from its directory: then the directory is the wrong one, an error; one of the same
    parameters and another seed is an error.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    if continued is None:
        continued = []
    elif isinstance(continued, (str, os.PathLike)):
        continued = [continued]
    dirs = [Path(d) for d in continued]
    for d in dirs:
        if not d.is_dir():
            raise RunFileError(f"no such directory of continued runs: {d}")
    seen, runs = set(), []
    used, foreign = {d: 0 for d in dirs}, {}
    for item in inputs:
        for p in _expand(item):
            rp = p.resolve()
            if rp in seen:
                continue
            seen.add(rp)
            runs.append(_continuation(Run(p), dirs, used, foreign))
    if not runs:
        raise RunFileError(f"no run files found in {', '.join(map(str, inputs))}")
    for d, (path, original) in foreign.items():
        if not used[d]:
            raise RunFileError(f"{path} is not a continuation of {original}: its parameters differ "
                               f"(and no run of the inputs is continued in {d})")
    return runs


def _continuation(run: Run, dirs: Sequence[Path], used: dict, foreign: dict) -> Run:
    """``run``, or its finished continuation ``<dir>/<run directory name>/<file name>`` in the first of
    ``dirs`` that holds one with its parameters (counted in ``used``; the first same-named one with other
    parameters per directory is kept in ``foreign``). The same parameters with another seed: an error."""
    for d in dirs:
        path = d / run.path.parent.name / run.path.name
        if path.resolve() == run.path.resolve() or not fmt.output_finished(path):
            continue
        longer = Run(path)
        if longer.params.key() != run.params.key():
            foreign.setdefault(d, (path, run.path))
            continue
        if longer.params.seed != run.params.seed:
            raise RunFileError(f"{path} is not a continuation of {run.path}: its seed differs")
        longer.continues = run.path
        used[d] += 1
        return longer
    return run


def group_runs(runs: Sequence[Run], exclude: Sequence[str] = ("seed",)) -> "OrderedDict[tuple, list[Run]]":
    """Group runs by :meth:`RunParameters.key` (all parameters but ``exclude``, by default the seed).

    Returns an ordered dict ``key -> [runs]`` sorted by key (None sorts first).
    """
    groups: dict = {}
    for r in runs:
        groups.setdefault(r.params.key(exclude), []).append(r)

    def sortable(key):
        return tuple((name, (v is not None, v if v is not None else 0)) for name, v in key)

    return OrderedDict(sorted(groups.items(), key=lambda kv: sortable(kv[0])))


def key_dict(key: tuple) -> dict:
    """A group key as a dict ``{name: value}``."""
    return dict(key)


def write_csv(path: Path, rows: Sequence[dict], columns: Sequence[str] | None = None) -> Path:
    """Write dict rows as CSV (columns: given, else the union in first-seen order)."""
    if columns is None:
        columns = list(OrderedDict((k, None) for r in rows for k in r))
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in columns})
    return path
