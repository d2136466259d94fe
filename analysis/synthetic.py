"""Synthetic run files in the mpisim layout (docs/file-format.md), for tests and examples.

:func:`write_run` writes one file through :class:`mpisim.io.format.SerialWriter`, the layout the
simulator's parallel writer uses: ``/h5md``, ``/particles/all`` (box, id, radius, position and image
snapshots), ``/observables`` (activity, active_pairs, energy, msd) and ``/parameters`` (the TOML
configuration plus one group per section, and ``provenance``). Any time series can be planted, so that
each measurement can be checked against a known answer.

Examples
--------
>>> import tempfile, pathlib
>>> import numpy as np
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> f = np.r_[np.linspace(0.5, 0.2, 5), np.full(20, 0.2)]
>>> p = write_run(d / "r.h5", n=32, phi=0.5, steps=240, log_every=10, activity=f)
>>> from analysis.io import load_run
>>> float(load_run(p).activity()[1][-1])
0.2
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from mpisim.io.format import SerialWriter


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def dump_toml(config: dict) -> str:
    """A minimal TOML writer for ``{section: {key: scalar or list}}``."""
    lines = []
    for section, items in config.items():
        lines.append(f"[{section}]")
        for k, v in items.items():
            if v is None:
                continue
            lines.append(f"{k} = {_toml_value(v)}")
        lines.append("")
    return "\n".join(lines)


def make_config(*, scheme="sgd", dim=3, n=64, phi=0.5, seed=0, steps=1000, log_every=10,
                kick_size=None, learning_rate=0.1, batch_fraction=0.5, potential="linear",
                radius=0.5, dynamics_extra=None) -> dict:
    """A configuration dict with the sections the simulator writes."""
    return {
        "system": {"dim": dim, "n": n, "phi": phi, "radius": radius, "seed": seed},
        "dynamics": {"scheme": scheme, "kick_size": kick_size, "learning_rate": learning_rate,
                     "batch_fraction": batch_fraction, "potential": potential, **(dynamics_extra or {})},
        "run": {"steps": steps, "log_every": log_every},
        "output": {"path": "out.h5"},
    }


def box_length(n: int, phi: float, dim: int, radius: float = 0.5) -> float:
    """Cubic box edge for N spheres of radius R at packing fraction phi."""
    v1 = math.pi ** (dim / 2) / math.gamma(dim / 2 + 1) * radius ** dim
    return (n * v1 / phi) ** (1.0 / dim)


def fcc_positions(cells: int, spacing: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """A perfect fcc crystal of ``cells``^3 cubic cells of edge ``spacing`` (4 particles each) and its
    periodic box: (positions [4 cells^3, 3], box [3])."""
    grid = np.stack(np.meshgrid(*[np.arange(cells)] * 3, indexing="ij"), -1).reshape(-1, 3)
    basis = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    return (grid[:, None, :] + basis).reshape(-1, 3) * spacing, np.full(3, cells * spacing)


def write_run(path, *, scheme="sgd", dim=3, n=64, phi=0.5, seed=0, steps=1000, log_every=10,
              kick_size=None, learning_rate=0.1, batch_fraction=0.5, potential="linear",
              radius=0.5, activity=None, msd=None, positions=None, images=None,
              frame_steps=None, box=None, absorbed=None, absorbed_step=None, dynamics_extra=None) -> Path:
    """Write a synthetic run file and return its path.

    Parameters
    ----------
    path : str or Path
    scheme, dim, n, phi, seed, steps, log_every, kick_size, learning_rate, batch_fraction,
    potential, radius :
        The configuration (TOML sections system, dynamics, run, output).
    activity : array [n_log], optional
        f_a at steps ``0, log_every, ...``; its length sets the number of logged steps (default:
        ``steps // log_every + 1`` points of constant activity 0.1). If it reaches 0, the run is
        marked absorbed at the first such step (unless ``absorbed`` is given) and the series ends
        there, as the simulator stops on absorption.
    msd : array [n_log], optional
        Values of ``/observables/msd`` (default: the snapshots' MSD interpolated to the logged steps).
    positions : array [frames, N, d], optional
        Snapshots; wrapped into [0, L) before writing, with images chosen so that wrapped + image *
        edges equals the given (unwrapped) positions. Default: one frame of uniform random positions.
    images : ignored if positions is given unwrapped; kept for symmetry with the layout.
    frame_steps : array [frames], optional
        Steps of the snapshots (default: evenly spaced over the logged steps).
    box : array [d], optional
        Box edges (default: cubic box from n, phi, radius).
    dynamics_extra : dict, optional
        More [dynamics] keys, e.g. ``{"temporal_correlation": -0.5, "spatial_correlation": "reciprocal"}``.
    """
    path = Path(path)
    rng = np.random.default_rng(seed)
    if box is None:
        box = np.full(dim, box_length(n, phi, dim, radius))
    box = np.asarray(box, dtype=np.float64)
    if activity is None:
        activity = np.full(steps // log_every + 1, 0.1)
    activity = np.asarray(activity, dtype=np.float64)
    zero = np.flatnonzero(activity <= 0.0)
    log_steps = np.arange(activity.size, dtype=np.int64) * log_every
    if absorbed is None:
        absorbed = zero.size > 0
    if absorbed and zero.size:
        activity = activity[: zero[0] + 1]
        log_steps = log_steps[: zero[0] + 1]
        if absorbed_step is None:
            absorbed_step = int(log_steps[-1])
    if positions is None:
        positions = rng.random((1, n, dim)) * box
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim == 2:
        positions = positions[None]
    nframes = positions.shape[0]
    n = positions.shape[1]
    if frame_steps is None:
        frame_steps = np.linspace(0, log_steps[-1], nframes).astype(np.int64)
    if msd is None:  # consistent with the snapshots: their MSD interpolated to the logged steps
        dx = positions - positions[0]
        frame_msd = (dx * dx).sum(axis=2).mean(axis=1)
        msd = np.interp(log_steps, frame_steps, frame_msd) if nframes > 1 else np.zeros(log_steps.size)
    msd = np.asarray(msd, dtype=np.float64)[: activity.size]
    img = np.floor(positions / box).astype(np.int32)
    wrapped = positions - img * box
    wrapped = np.where(wrapped >= box, wrapped - box, wrapped)

    config = make_config(scheme=scheme, dim=dim, n=n, phi=phi, seed=seed, steps=steps,
                         log_every=log_every, kick_size=kick_size, learning_rate=learning_rate,
                         batch_fraction=batch_fraction, potential=potential, radius=radius,
                         dynamics_extra=dynamics_extra)
    provenance = {"package_version": "synthetic", "git_commit": "none", "mpi_size": 1, "end_time": "synthetic",
                  "absorbed": bool(absorbed), "absorbed_step": int(absorbed_step) if absorbed else -1}
    series = {"activity": activity, "active_pairs": np.round(activity * n).astype(np.int64),
              "energy": activity * n * 0.1, "msd": msd}
    with SerialWriter(path, n, dim, box, series={k: v.dtype for k, v in series.items()},
                      config_toml=dump_toml(config), sections=config, provenance=provenance,
                      author="analysis.synthetic", creator_version="synthetic") as out:
        out.write_static(np.full(n, radius))
        for step, x, image in zip(frame_steps, wrapped, img):
            out.append_frame(step, x, image)
        out.append_series(log_steps, series)
    return path


def write_manifest(path, run_paths, statuses=None) -> Path:
    """Write a sweep manifest (``path`` relative to the manifest's directory, and ``status``)."""
    path = Path(path)
    statuses = statuses or ["done"] * len(run_paths)
    with open(path, "w") as fh:
        fh.write("run\tpath\tstatus\n")
        for i, (p, s) in enumerate(zip(run_paths, statuses)):
            rel = Path(p).resolve().relative_to(path.parent.resolve())
            fh.write(f"{i}\t{rel}\t{s}\n")
    return path
