"""Command line: ``mpisim-analysis <subcommand> INPUTS... [options]`` (or ``python -m analysis``).

INPUTS are run files, glob patterns, directories or sweep manifests (see :mod:`analysis.io`).
Tables go to stdout as tab-separated text, or to ``-o FILE.csv``. A user mistake (missing file, a
file that is not a run, a run too short for the window, too few sizes for a collapse) prints one
line ``mpisim-analysis: error: ...`` on stderr and exits with status 2.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from mpisim.core.progress import one_line_warnings

from .errors import AnalysisError

PROG = "mpisim-analysis"


def _emit(rows, columns, output):
    if output:
        from .io import write_csv
        write_csv(Path(output), rows, columns)
        print(f"wrote {output}")
        return

    def fmt(v):
        if v is None:
            return ""
        if isinstance(v, float):
            return f"{v:.6g}"
        return str(v)

    print("\t".join(columns))
    for r in rows:
        print("\t".join(fmt(r.get(c)) for c in columns))


def _inputs(p):
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="run files (.h5), glob patterns, directories or manifest.tsv files")
    p.add_argument("--continued", metavar="DIR", action="append",
                   help="continuations of the runs (launch/steady_continuation.py's OUT): a run with a finished "
                        "continuation DIR/<run directory name> is read from it instead; repeat it for several "
                        "studies")


def _runs(a, inputs=None):
    """The runs of the inputs, each continued run in place of its original (--continued), with a note."""
    from .io import load_runs
    runs = load_runs(a.inputs if inputs is None else inputs, a.continued)
    n = sum(r.continues is not None for r in runs)
    if a.continued is not None:
        print(f"mpisim-analysis: note: {n} of {len(runs)} runs read from their continuations in "
              f"{', '.join(a.continued)}", file=sys.stderr)
    return runs


def _activity_opts(p):
    p.add_argument("--window-fraction", type=float, default=0.5,
                   help="fraction of the run's steps, at its end, averaged for f_inf (default 0.5)")
    p.add_argument("--blocks", type=int, default=10, help="blocks for the f_inf error bar (default 10)")
    p.add_argument("--threshold", type=float, default=0.1,
                   help="tau_r: first step with (f - f_inf)/f_inf below this (default 0.1)")
    p.add_argument("--steady-sigma", type=float, default=3.0,
                   help="steady state: largest drift of f_a over the window, in its errors (default 3)")
    p.add_argument("--absorption-horizon", type=float, default=1.0,
                   help="a run that did not absorb is steady only if it lasted this multiple of the latest "
                        "absorption at its N and the same or a higher phi (default 1; 0: off)")
    p.add_argument("--include-unsteady", action="store_true",
                   help="keep (N, phi) points with a run that is neither steady nor absorbed "
                        "(default: left out of f_inf, tau_r, collapses and phi_c, with a note)")
    p.add_argument("--max-solid-fraction", type=float, default=None, metavar="F",
                   help="leave out every (N, phi) point with a crystallized run: more than F of its particles "
                        "solid-like in the last snapshot (q6 bond order, as `crystal`), also from the absorption "
                        "bracket; e.g. 0.1 (default: crystallinity not read)")


def _activity_kwargs(a):
    return dict(window_fraction=a.window_fraction, n_blocks=a.blocks, threshold=a.threshold,
                n_sigma=a.steady_sigma, include_unsteady=a.include_unsteady,
                absorption_horizon=a.absorption_horizon, max_solid_fraction=a.max_solid_fraction)


def _activity_table(a):
    """The activity table of the inputs; says on stderr what it left out as not steady."""
    from .activity import ActivityTable
    t = ActivityTable(**_activity_kwargs(a)).compute(_runs(a))
    if t.exclusion_note:
        print(f"{PROG}: note: {t.exclusion_note}", file=sys.stderr)
    return t


def _progress_opt(p):
    p.add_argument("--progress-seconds", type=float, default=10.0,
                   help="progress of the per-run work on stderr every S seconds (a tqdm bar on a terminal or "
                        "in a notebook when tqdm is installed; the first run, with kernel compilation, timed "
                        "apart); 0: none (default 10)")


def _progress(runs, what, a):
    """The runs, with progress on stderr (mpisim/core/progress.py)."""
    from mpisim.core.progress import progress
    return progress(runs, what, seconds=a.progress_seconds, enabled=a.progress_seconds > 0)


def _phi_c_opts(p):
    """What may count as phi_c (``collapse``, ``phic``)."""
    from .fss import MAX_QUALITY
    p.add_argument("--no-bracket", dest="within_bracket", action="store_false",
                   help="let phi_c range over the data instead of the absorption bracket (docs/analysis.md)")
    p.add_argument("--max-quality", type=float, default=MAX_QUALITY, metavar="S",
                   help=f"the largest collapse quality S at which phi_c inside its range is a value (default "
                        f"{MAX_QUALITY:g}; above it phi_c is undetermined: docs/analysis.md)")


def _output(p):
    p.add_argument("-o", "--output", help="write the table as CSV to this file instead of stdout")


# ---- subcommands -------------------------------------------------------------------------------

def cmd_info(a):
    from .io import group_runs
    runs = _runs(a)
    rows = []
    for key, members in group_runs(runs).items():
        d = dict(key)
        d["seeds"] = ",".join(str(r.params.seed) for r in members)
        d["n_absorbed"] = sum(r.absorbed for r in members)
        d["runs"] = len(members)
        rows.append(d)
    cols = ["scheme", "dim", "n", "phi", "kick_size", "learning_rate", "batch_fraction", "potential",
            "runs", "n_absorbed", "seeds"]
    _emit(rows, cols, a.output)


def cmd_activity(a):
    from .activity import TABLE_COLUMNS
    t = _activity_table(a)
    if a.per_run:
        cols = ["path", "scheme", "n", "phi", "kick_size", "learning_rate", "batch_fraction", "seed",
                "f_inf", "f_inf_err", "tau_r", "last_step", "absorbed", "steady", "steady_reason"]
        if a.max_solid_fraction is not None:
            cols.append("solid_fraction")
        _emit(t.per_run, cols, a.output)
    else:
        _emit(t.rows, list(TABLE_COLUMNS), a.output)


def cmd_curves(a):
    from .activity import activity_curves
    rows = []
    for key, (k, f, e) in activity_curves(_runs(a)).items():
        d = dict(key)
        for kk, ff, ee in zip(k, f, e):
            rows.append({**d, "k": int(kk), "f_a": float(ff), "f_a_err": float(ee)})
    _emit(rows, ["scheme", "n", "phi", "kick_size", "learning_rate", "batch_fraction", "k", "f_a", "f_a_err"],
          a.output)


def _bound_notes(points):
    for p in points:
        if p["status"] in ("bound", "undetermined"):
            what = (f"phi_c {p['phi_c_bound']} (a bound, not a value: {p['status_reason']})"
                    if p["status"] == "bound" else f"phi_c undetermined ({p['status_reason']})")
            print(f"{PROG}: note: {p['scheme']} b_f={p['batch_fraction']} step {p['step_size']}: {what}; "
                  f"left out of the extrapolation", file=sys.stderr)


def cmd_collapse(a):
    from .critical import CriticalPoints
    from .errors import CollapseError
    cp = CriticalPoints(a.quantity, free=a.free, n_bootstrap=a.bootstrap, within_bracket=a.within_bracket,
                        max_quality=a.max_quality)   # its options checked before the runs are read
    t = _activity_table(a)
    cp.compute(t.rows, t.per_run)
    rows = [p for p in cp.points if p["method"] == "collapse"]
    failed = [f"{p['scheme']} step {p['step_size']}: {p['method'][len('failed: '):]}"
              for p in cp.points if str(p["method"]).startswith("failed: ")]
    for what in failed if rows else ():
        print(f"{PROG}: note: no collapse for {what}", file=sys.stderr)
    if not rows and failed:
        raise CollapseError("; ".join(failed))
    if not rows:
        ns = sorted({r["n"] for r in t.rows})
        raise CollapseError(f"too few sizes for a collapse: need >= 2 system sizes per scheme and "
                            f"step size (found N = {', '.join(map(str, ns))})")
    if a.free:
        for p in rows:
            c = next(c for (fk, st), c in cp.collapses.items()
                     if st == p["step_size"] and dict(fk)["scheme"] == p["scheme"]
                     and dict(fk)["batch_fraction"] == p["batch_fraction"])
            p.update(nu=c.nu, zeta=c.zeta, dnu=c.result.dnu, dzeta=c.result.dzeta)
    cols = ["scheme", "batch_fraction", "potential", "dim", "step_size", "sizes", "status", "status_reason", "phi_c",
            "phi_c_err", "phi_c_bound", "phi_c_optimum", "phi_c_err_fit", "phi_c_err_method",
            "phi_c_err_bootstrap", "at_boundary", "quality", "overlap", "excluded_points", "phi_all_absorbed",
            "phi_none_absorbed", "in_bracket"]
    _bound_notes(rows)
    if a.free:
        cols += ["nu", "dnu", "zeta", "dzeta"]
    _emit(rows, cols, a.output)


def cmd_phic(a):
    from .critical import EXTRAPOLATION_COLUMNS, POINT_COLUMNS, CriticalPoints
    forms = [f.strip() for f in a.forms.split(",") if f.strip()]
    cp = CriticalPoints(a.quantity, forms=forms, n_bootstrap=a.bootstrap, within_bracket=a.within_bracket,
                        max_quality=a.max_quality)
    t = _activity_table(a)
    cp.compute(t.rows, t.per_run)
    _bound_notes(cp.points)
    _emit(cp.points, list(POINT_COLUMNS), a.output)
    print()
    _emit(cp.extrapolations, list(EXTRAPOLATION_COLUMNS),
          None if a.output is None else str(Path(a.output).with_suffix("")) + "_extrapolated.csv")
    for line in cp.verdicts():
        print(f"# {line}")


def cmd_refine(a):
    from .critical import FAMILY_FIELDS, row_step_size
    from .errors import AnalysisError
    from .fss import absorption_bracket, refine_phi_grid
    if not a.min_step > 0:
        raise AnalysisError(f"--min-step must be > 0, got {a.min_step}")
    t = _activity_table(a)
    fam: dict = {}
    for r in t.rows:
        key = tuple((f, r.get(f)) for f in FAMILY_FIELDS) + (("step_size", row_step_size(r)),)
        fam.setdefault(key, []).append(r)
    rows = []
    for key, rs in fam.items():
        phis = sorted({float(r["phi"]) for r in rs})
        if len(phis) < 2:
            raise AnalysisError(f"refine: {dict(key)['scheme']} step {dict(key)['step_size']}: "
                                f"needs >= 2 packing fractions, found {len(phis)}")
        br = absorption_bracket(rs)
        new = refine_phi_grid(rs, min_step=a.min_step)
        rows.append({**dict(key), "sizes": ",".join(str(n) for n in sorted({int(r["n"]) for r in rs})),
                     "phi_all_absorbed": br["phi_all_absorbed"], "phi_none_absorbed": br["phi_none_absorbed"],
                     "phi_half": " ".join(f"{n}:{v:.4f}" for n, v in br["phi_half"].items()),
                     "new_phi": " ".join(f"{v:.10g}" for v in new),
                     "axis": "[" + ", ".join(f"{v:.10g}" for v in sorted(set(phis) | set(new))) + "]"})
    _emit(rows, list(FAMILY_FIELDS) + ["step_size", "sizes", "phi_all_absorbed", "phi_none_absorbed",
                                       "phi_half", "new_phi", "axis"], a.output)


def _t0_values(text):
    """``--t0``: comma-separated "end", "auto" or positive step counts -> [None | "auto" | float]."""
    out = []
    for tok in (t.strip() for t in text.split(",")):
        if tok == "end":
            out.append(None)
        elif tok == "auto":
            out.append("auto")
        else:
            try:
                v = float(tok)
            except ValueError:
                v = math.nan
            if not v > 0:
                raise AnalysisError(f"--t0: {tok!r} is not one of end, auto or a positive number of steps")
            out.append(v)
    if not out:
        raise AnalysisError("--t0: give end, auto or a positive number of steps (comma-separated)")
    return out


def cmd_survival(a):
    from .survival import COLUMNS, AbsorptionProbability, RunOutcome
    t0s = _t0_values(a.t0)
    for name in ("z", "nu_perp"):
        v = getattr(a, name)
        if v is not None and not v > 0:
            raise AnalysisError(f"--{name.replace('_', '-')} must be > 0, got {v}")
    if a.bootstrap < 0:
        raise AnalysisError(f"--bootstrap must be >= 0, got {a.bootstrap}")
    if a.n0 is not None and a.n0 < 1:
        raise AnalysisError(f"--n0 must be a number of particles >= 1, got {a.n0}")
    outcomes = [RunOutcome.from_run(r) for r in _runs(a)]
    rows = []
    for t0 in t0s:
        ap = AbsorptionProbability(t0=t0, z=a.z, nu_perp=a.nu_perp, n0=a.n0, censored=a.censored,
                                   n_bootstrap=a.bootstrap, seed=a.seed).compute(outcomes)
        for line in ap.notes():
            print(f"{PROG}: note: {'end' if t0 is None else f't0={t0}'}: {line}", file=sys.stderr)
        rows.extend(ap.rows)
    _emit(rows, list(COLUMNS), a.output)


def cmd_msd(a):
    from .activity import seed_mean
    from .io import group_runs
    from .msd import MSD
    rows = []
    for key, members in group_runs(_runs(a)).items():
        m = MSD(source=a.source, k_min=a.k_min, k_max=a.k_max).compute(members)
        d = {**dict(key), "n_seeds": len(members), "c": m.exponent.c, "c_err": m.exponent.c_err,
             **dict(zip(("c_seed_mean", "c_seed_sem"), seed_mean(m.c_seeds))),
             "fit_k_min": m.exponent.fit_range[0], "fit_k_max": m.exponent.fit_range[1]}
        if a.at is not None:
            d["msd_at"], d["msd_at_err"] = m.at(a.at)
        rows.append(d)
    cols = ["scheme", "n", "phi", "kick_size", "learning_rate", "batch_fraction", "n_seeds", "c", "c_err",
            "c_seed_mean", "c_seed_sem", "fit_k_min", "fit_k_max"]
    if a.at is not None:
        cols += ["msd_at", "msd_at_err"]
    _emit(rows, cols, a.output)


def cmd_flatness(a):
    from .flatness import measure_run
    rows = []
    for r in _progress(_runs(a), "flatness: runs", a):
        fl = measure_run(r, frame=a.frame, sigma_t=a.sigma_t, m=a.m, seed=a.seed)
        rows.append({"path": str(r.path), "scheme": r.params.scheme, "n": r.params.n, "phi": r.params.phi,
                     "batch_fraction": r.params.batch_fraction, "seed": r.params.seed,
                     "potential": r.params.potential, "sigma_t": a.sigma_t, "m": a.m,
                     "delta_v": fl.delta_v, "delta_v_err": fl.delta_v_err, "u0": fl.u0,
                     "delta_v_tilde": fl.delta_v_tilde,
                     "delta_v_tilde_per_particle": fl.delta_v_tilde_per_particle,
                     "energy_per_particle": fl.energy_per_particle})
    _emit(rows, list(rows[0].keys()), a.output)


def cmd_crystal(a):
    from .crystal import measure_run
    rows = []
    for r in _progress(_runs(a), "crystal: runs", a):
        c = measure_run(r, frame=a.frame, num_neighbors=a.num_neighbors, q_threshold=a.q_threshold,
                        solid_threshold=a.solid_threshold)
        rows.append({"path": str(r.path), "scheme": r.params.scheme, "n": r.params.n, "phi": r.params.phi,
                     "seed": r.params.seed, "absorbed": r.absorbed, "solid_fraction": c.solid_fraction,
                     "largest_cluster": c.largest_cluster_size})
    _emit(rows, list(rows[0].keys()), a.output)


def cmd_sofk(a):
    from .structure_factor import StructureFactor, default_bins
    rows = []
    for r in _progress(_runs(a), "sofk: runs", a):
        box = r.box
        bins = a.bins or default_bins(box, a.k_max, a.k_min)
        sk = StructureFactor(bins, a.k_max, a.k_min, octant=a.octant, method=a.method,
                             tolerance=a.tolerance).compute(r.positions(a.frame), box)
        try:
            alpha, alpha_err = sk.exponent(a.fit_k_max, a.fit_k_min)
        except AnalysisError:
            alpha, alpha_err = math.nan, math.nan
        for k, s, c in zip(sk.k_mean, sk.S_k, sk.k_counts):
            rows.append({"path": str(r.path), "scheme": r.params.scheme, "phi": r.params.phi,
                         "k": float(k), "S": float(s), "n_kvectors": int(c),
                         "alpha": alpha, "alpha_err": alpha_err})
    _emit(rows, ["path", "scheme", "phi", "k", "S", "n_kvectors", "alpha", "alpha_err"], a.output)


def cmd_activity_plot(a):
    from .figures import activity_figure
    print(activity_figure(_runs(a), a.output))


def cmd_figures(a):
    from .figures import ALL_FIGURES, make_figures
    which = None if a.which is None else [w.strip() for w in a.which.split(",") if w.strip()]
    if a.hu_frames < 1:
        raise AnalysisError(f"--hu-frames must be >= 1, got {a.hu_frames}")
    inputs = list(a.inputs)
    # `figures NAME INPUTS...`: a leading figure name (that is not a file) is the same as --which NAME
    if len(inputs) > 1 and inputs[0] in ALL_FIGURES and not Path(inputs[0]).exists():
        if which is not None and which != [inputs[0]]:
            raise AnalysisError(f"figure {inputs[0]} given both as the first argument and with --which "
                                f"{a.which}: give one")
        which = [inputs.pop(0)]
    paths = make_figures(_runs(a, inputs), a.out, which, activity_kwargs=_activity_kwargs(a),
                         k_at=a.msd_step, flatness_m=a.flatness_m, sigma_t=a.sigma_t,
                         sofk_k_max=a.sofk_k_max, hu_k_fit_max=a.hu_k_fit_max, hu_frames=a.hu_frames,
                         bootstrap=a.bootstrap, progress_seconds=a.progress_seconds,
                         log=lambda m: print(m, file=sys.stderr))
    for p in paths:
        print(p)


# ---- parser ------------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, status 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    from mpisim.core.sofk import NUFFT_TOLERANCE
    p = _Parser(prog=PROG, description="Serial analysis of mpisim runs: the paper's measurements and figures.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    s = sub.add_parser("info", help="list runs grouped by parameters")
    _inputs(s); _output(s); s.set_defaults(func=cmd_info)

    s = sub.add_parser("activity", help="steady-state activity f_inf and relaxation time tau_r per group")
    _inputs(s); _activity_opts(s); _output(s)
    s.add_argument("--per-run", action="store_true", help="one row per run instead of per group")
    s.set_defaults(func=cmd_activity)

    s = sub.add_parser("activity-plot", help="one PNG of the activity f_a against the step of each run "
                                             "(what launch/demo ends with); prints its path")
    _inputs(s)
    s.add_argument("-o", "--output", required=True, help="the PNG file to write")
    s.set_defaults(func=cmd_activity_plot)

    s = sub.add_parser("curves", help="seed-averaged activity curves f_a(k)")
    _inputs(s); _output(s); s.set_defaults(func=cmd_curves)

    s = sub.add_parser("collapse", help="finite-size-scaling fit of phi_c (Manna exponents fixed)")
    _inputs(s); _activity_opts(s); _output(s)
    s.add_argument("--quantity", choices=("f_inf", "tau_r"), default="f_inf")
    s.add_argument("--free", action="store_true", help="also fit nu and zeta (pyfssa autoscale)")
    s.add_argument("--bootstrap", type=int, default=0,
                   help="resamplings of the seeds for a bootstrap error of phi_c (default 0: none)")
    _phi_c_opts(s)
    s.set_defaults(func=cmd_collapse)

    s = sub.add_parser("phic", help="phi_c per step size (a value or a bound) and its extrapolations to zero step (Fig. 5b)")
    _inputs(s); _activity_opts(s); _output(s)
    s.add_argument("--quantity", choices=("f_inf", "tau_r"), default="f_inf")
    s.add_argument("--forms", default="linear,sqrt,power",
                   help="extrapolation forms phi_c(0) + s g(eps), g = eps, sqrt(eps), eps^a (default: all three)")
    s.add_argument("--bootstrap", type=int, default=100,
                   help="resamplings of the seeds for the bootstrap error of phi_c (default 100; 0: none)")
    _phi_c_opts(s)
    s.set_defaults(func=cmd_phic)

    s = sub.add_parser("refine", help="an adaptive phi grid: the packing fractions to add where the runs "
                                      "change from absorbing to active (docs/analysis.md)")
    _inputs(s); _activity_opts(s); _output(s)
    s.add_argument("--min-step", type=float, default=0.001,
                   help="do not split grid intervals narrower than 2 x this (default 0.001)")
    s.set_defaults(func=cmd_refine)

    s = sub.add_parser("survival", help="phi_c from the absorption probability at a time scaled with N "
                                        "(independent of the collapse; docs/analysis.md)",
                       description="phi_c from the absorbed fraction of the runs at T(N) = t0 (L/L0)^z: per N the "
                                   "50%% point of a logistic fit (or a bracket when the data are separated), the "
                                   "crossing of the curves of all N, and phi_half(N) extrapolated in "
                                   "L^(-1/nu_perp) (docs/analysis.md, 'phi_c from the absorption probability').")
    _inputs(s); _output(s)
    s.add_argument("--t0", default="end,auto",
                   help="comma-separated: steps at the reference size N0, 'auto' (2000 / step size) or 'end' "
                        "(each run at its own end) (default end,auto)")
    s.add_argument("--z", type=float, help="T(N) = t0 (L/L0)^z (default: Manna nu_par/nu_perp, 1.83 in 3d)")
    s.add_argument("--nu-perp", type=float, help="of the crossing form and the extrapolation (default: Manna)")
    s.add_argument("--n0", type=int, help="reference size of t0 (default: each family's smallest N)")
    s.add_argument("--censored", choices=("exclude", "active", "absorbed"), default="exclude",
                   help="a run that stopped before T without absorbing: left out (default), counted active, or "
                        "counted absorbed (the last two bound what longer runs could give)")
    s.add_argument("--bootstrap", type=int, default=200,
                   help="resamplings of the seeds of every (N, phi) point (default 200; 0: none)")
    s.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    s.set_defaults(func=cmd_survival)

    s = sub.add_parser("msd", help="seed-averaged MSD and the diffusion exponent c of MSD ~ k^c")
    _inputs(s); _output(s)
    s.add_argument("--k-min", type=float, help="fit range start (default: a third of the run)")
    s.add_argument("--k-max", type=float, help="fit range end (default: end of the run)")
    s.add_argument("--at", type=int, help="also report MSD at this step (Fig. 5a uses 10000)")
    s.add_argument("--source", choices=("auto", "positions", "observable"), default="auto")
    s.set_defaults(func=cmd_msd)

    s = sub.add_parser("flatness", help="energy fluctuation Delta V / U_0 under Gaussian perturbations")
    _inputs(s); _output(s)
    s.add_argument("--sigma-t", type=float, default=0.03, help="perturbation size / R (default 0.03)")
    s.add_argument("-m", type=int, default=4000, help="number of perturbations (default 4000)")
    s.add_argument("--frame", type=int, default=-1, help="snapshot (default: last)")
    s.add_argument("--seed", type=int, default=0, help="seed of the perturbations")
    _progress_opt(s)
    s.set_defaults(func=cmd_flatness)

    s = sub.add_parser("crystal", help="crystalline order of a snapshot: fraction of solid-like particles "
                                       "(ten Wolde - Frenkel q6 bonds) and the largest solid cluster")
    _inputs(s); _output(s)
    s.add_argument("--frame", type=int, default=-1, help="snapshot (default: last)")
    s.add_argument("--num-neighbors", type=int, default=12, help="nearest neighbours per particle (default 12)")
    s.add_argument("--q-threshold", type=float, default=0.7, help="smallest q6 product of a solid-like bond (default 0.7)")
    s.add_argument("--solid-threshold", type=int, default=6,
                   help="smallest number of solid-like bonds of a solid-like particle (default 6)")
    _progress_opt(s)
    s.set_defaults(func=cmd_crystal)

    s = sub.add_parser("sofk", help="structure factor S(k) of a snapshot and its small-k exponent")
    _inputs(s); _output(s)
    s.add_argument("--k-max", type=float, default=10.0, help="largest |k| in 1/(2R) (default 10)")
    s.add_argument("--k-min", type=float, default=0.0, help="smallest |k| binned (default 0; k=0 excluded)")
    s.add_argument("--bins", type=int, help="number of |k| bins (default: width 2 pi / L)")
    s.add_argument("--frame", type=int, default=-1)
    s.add_argument("--octant", action="store_true", help="sum only n >= 0 wave vectors (freud's set)")
    s.add_argument("--method", choices=("auto", "direct", "nufft"), default="auto",
                   help="direct sums, a type-1 NUFFT (large k_max), or auto (default: direct for small k sets; "
                        "docs/structure-factor.md)")
    s.add_argument("--tolerance", type=float, default=NUFFT_TOLERANCE,
                   help=f"nufft: finufft's tolerance (default {NUFFT_TOLERANCE:g})")
    s.add_argument("--fit-k-max", type=float, default=1.0, help="exponent fit range end (default 1)")
    s.add_argument("--fit-k-min", type=float, help="exponent fit range start (default 2 pi / L)")
    _progress_opt(s)
    s.set_defaults(func=cmd_sofk)

    s = sub.add_parser("figures", help="write the paper's figures (PNG, PDF, CSV)",
                       description="Write figures (PNG, PDF, CSV). `figures NAME INPUT...` is the same as "
                                   "`figures INPUT... --which NAME`.")
    _inputs(s); _activity_opts(s)
    s.add_argument("--out", "-o", default="figures", help="output directory (default ./figures)")
    s.add_argument("--which", help="comma-separated subset of fig3,fig4b,fig5a,fig5b,figS1,figS2,hyperuniformity")
    s.add_argument("--msd-step", type=int, default=10000, help="k for MSD at fixed step (default 10000)")
    s.add_argument("--flatness-m", type=int, default=4000, help="perturbations for Fig. 4b (default 4000)")
    s.add_argument("--sigma-t", type=float, default=0.03, help="perturbation size / R (default 0.03)")
    s.add_argument("--sofk-k-max", type=float, default=10.0, help="k_max of S(k) for Fig. S2")
    s.add_argument("--hu-k-fit-max", type=float,
                   help="hyperuniformity: end of the S ~ k^alpha fit (default 0.5, >= 4 x 2 pi/L)")
    s.add_argument("--bootstrap", type=int, default=100,
                   help="Fig. 5b: resamplings of the seeds for the bootstrap error of phi_c (default 100)")
    s.add_argument("--hu-frames", type=int, default=5,
                   help="hyperuniformity: last snapshots per run averaged (from its second half; default 5)")
    _progress_opt(s)
    s.set_defaults(func=cmd_figures)
    return p


def main(argv=None) -> int:
    """Entry point; returns the exit status (0, or 2 for a user mistake)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with one_line_warnings(PROG, "default"):
            args.func(args)
    except AnalysisError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
