"""The paper's figures from run collections: PNG + PDF, with their numbers as CSV beside them.

================ ===================================================================================
figure           content (paper 000)
================ ===================================================================================
fig3             per scheme / b_f / step size with >= 2 sizes: (a) f_inf(phi) per N, (b) its collapse
                 L^{beta/nu_perp} f_inf vs L^{1/nu_perp}(phi - phi_c), (c) tau_r(phi), (d) its collapse
                 L^{-nu_par/nu_perp} tau_r vs L^{1/nu_perp}(phi - phi_c); Manna exponents, phi_c fitted
fig4b            Delta V / (N U_0) of the final configurations against b_f, one line per scheme and phi
fig5a            MSD at step k (default 10^4) against the (BRO-equivalent) kick size, one line per scheme
fig5b            phi_c against step size (alpha or epsilon) per scheme and b_f, with the eps -> 0 line
figS1            (a) MSD(k) for SGD, pairwise BRO, their SA; (b) the same for RCD, individual BRO, SA;
                 (c) MSD at step k against kick size for RCD, individual BRO, SA
figS2            (a) S(k) of the final configurations, one curve per scheme (and phi); (b) where the runs
                 measured S(k) in the run: S at the smallest k against step (is the structure stationary?)
hyperuniformity  noise-model study (pgd/spgd): S(k) at small k per temporal/spatial noise correlation,
                 averaged over the last snapshots and seeds, with the fitted k^alpha (alpha +- error, fit range)
================ ===================================================================================

Every function returns the list of files written; figures without data are skipped by
:func:`make_figures` (with a note) unless they were asked for explicitly, in which case the
:class:`~analysis.errors.AnalysisError` explains what is missing.
"""
from __future__ import annotations

import math
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from matplotlib.figure import Figure
from mpisim.core.progress import ItemProgress

from .activity import ActivityTable, seed_mean
from .critical import FAMILY_FIELDS, CriticalPoints, row_step_size
from .errors import AnalysisError, CollapseError
from .flatness import measure_run as flatness_of_run
from .fss import Collapse, manna
from .io import Run, group_runs, key_dict, takes_kick_size, write_csv
from .msd import MSD
from .structure_factor import StructureFactor, default_bins, fit_power_law

ALL_FIGURES = ("fig3", "fig4b", "fig5a", "fig5b", "figS1", "figS2", "hyperuniformity")
PAIRWISE_FAMILY = ("sgd", "bro-pairwise", "sa-pairwise")
INDIVIDUAL_FAMILY = ("rcd", "bro-individual", "sa-individual")
MARKERS = "osD^v<>p*h"


def _save(fig: Figure, out: Path, stem: str, rows: Sequence[dict], columns=None) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in ("png", "pdf"):
        p = out / f"{stem}.{ext}"
        fig.savefig(p, dpi=150 if ext == "png" else None, bbox_inches="tight")
        paths.append(p)
    paths.append(write_csv(out / f"{stem}.csv", rows, columns))
    return paths


def _legend(ax, max_entries: int = 14, **kw):
    """A legend, or, with more than ``max_entries`` labelled curves, a note that says how many there
    are (a legend that covers the axes hides the data; the CSV has every curve)."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    if len(handles) > max_entries:
        ax.text(0.02, 0.98, f"{len(handles)} curves (legend left out; see the CSV)", transform=ax.transAxes,
                ha="left", va="top", fontsize=7, color="0.3")
        return
    ax.legend(**kw)


def _empty_note(ax, text: str):
    """Say why a panel is empty instead of drawing bare axes."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=8, color="0.3")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.minorticks_off()


def _log_limits(values, pad: float = 2.0):
    """(low, high) for a log axis from the positive ``values``: a decade floor at most 4 decades below
    the largest, never set by error bars that reach zero."""
    v = np.asarray([x for x in values if np.isfinite(x) and x > 0], dtype=float)
    if v.size == 0:
        return None
    hi = v.max() * pad
    lo = max(v.min() / pad, hi * 1e-4)
    return lo, hi


def _fmt(v) -> str:
    if v is None:
        return "none"
    return f"{v:g}" if isinstance(v, float) else str(v)


def _step_label(scheme: str) -> str:
    return r"$\epsilon$" if takes_kick_size(scheme) else r"$\alpha$"


def _phi_c_title(panel: str, c: Collapse) -> str:
    """Panel title with phi_c +- error, and on a second line how the error was obtained when it is not
    the curvature of S, or that phi_c sits at an end of its allowed range (never a bare nan)."""
    label = c.phi_c_label().replace("+-", r"$\pm$")
    value, _, note = label.partition(" (")
    if c.status == "bound":               # "<= 0.5569" reads "phi_c <= 0.5569", never "phi_c = <= ..."
        rel = r"$\leq$" if value.startswith("<=") else r"$\geq$"
        head = fr"{panel} $\phi_c$ {rel} {value[2:].strip()}"
    elif c.status == "undetermined":
        head = fr"{panel} $\phi_c$ undetermined"
    else:
        head = fr"{panel} $\phi_c$ = {value}"
    return f"{head}, S = {c.quality:.3g}" + (f"\n({note}" if note else "")


# ---- activity against step (launch/demo) ---------------------------------------------------------

def activity_figure(runs: Sequence[Run], path) -> Path:
    """One PNG at ``path``: the activity f_a against the step of each run (log axes; f_a = 0, an absorbed
    run's last rows, cannot sit on a log axis: a marker at its absorbing step says so instead)."""
    if not runs:
        raise AnalysisError("activity-plot: no runs given")
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise AnalysisError(f"-o/--output: {path} must end in .png")
    if not path.resolve().parent.is_dir():
        raise AnalysisError(f"-o/--output: directory of {str(path)!r} does not exist")
    fig = Figure(figsize=(5.5, 3.8))
    ax = fig.add_subplot()
    values = []
    for r in runs:
        steps, f = r.activity()
        keep = (steps > 0) & (f > 0)
        p = r.params
        label = f"{p.scheme}, N={p.n}, phi={p.phi:g}" + (f", seed {p.seed}" if len(runs) > 1 else "")
        (line,) = ax.plot(steps[keep], f[keep], lw=1.2, label=label)
        values += list(f[keep])
        if r.absorbed_step is not None and r.absorbed_step > 0:
            ax.axvline(r.absorbed_step, color=line.get_color(), ls=":", lw=1)
            ax.annotate(f"absorbed at {r.absorbed_step}", (r.absorbed_step, 0.98), xycoords=("data", "axes fraction"),
                        ha="right", va="top", rotation=90, fontsize=7, color=line.get_color())
    ax.set_xscale("log")
    ax.set_yscale("log")
    lim = _log_limits(values)
    if lim is None:
        _empty_note(ax, "no step with f_a > 0 after step 0")
    else:
        ax.set_ylim(lim[0], min(lim[1], 1.2))
    ax.set_xlabel("step k")
    ax.set_ylabel(r"activity $f_a$")
    _legend(ax, fontsize=7)
    fig.savefig(path, dpi=150, bbox_inches="tight")
    return path


# ---- Fig. 3 ------------------------------------------------------------------------------------

def fig3(rows: Sequence[dict], out: Path) -> list[Path]:
    """Finite-size scaling of f_inf and tau_r (Fig. 3 / S3) for every family with >= 2 sizes."""
    out = Path(out)
    fams: dict = OrderedDict()
    for r in rows:
        key = (r["scheme"], r.get("batch_fraction"), row_step_size(r), r.get("potential"), r["dim"])
        fams.setdefault(key, []).append(r)
    written = []
    for (scheme, bf, step, pot, dim), rs in fams.items():
        if len({r["n"] for r in rs}) < 2:
            continue
        m = manna(int(dim))
        try:
            cf = Collapse("f_inf", dim=int(dim)).compute(rs)
        except CollapseError:
            continue
        try:
            ct = Collapse("tau_r", dim=int(dim)).compute(rs)
        except CollapseError:
            ct = None
        fig = Figure(figsize=(9, 7))
        ax = fig.subplots(2, 2)
        ns = sorted({int(r["n"]) for r in rs})
        csv_rows = []
        floor = _log_limits([r["f_inf"] for r in rs])
        n_absorbed_points = n_left_out = 0
        for i, n in enumerate(ns):
            sel = sorted((r for r in rs if int(r["n"]) == n), key=lambda r: r["phi"])
            phi = np.array([r["phi"] for r in sel])
            f = np.array([r["f_inf"] for r in sel])
            fe = np.array([r["f_inf_err"] for r in sel])
            t = np.array([r["tau_r"] for r in sel], dtype=float)
            te = np.array([r["tau_r_err"] for r in sel], dtype=float)
            L = n ** (1.0 / dim)
            mk = MARKERS[i % len(MARKERS)]
            pos = f > 0
            color = f"C{i % 10}"
            # error bars clipped at the value: a mean of an absorbed (0) and an active seed has
            # sem = mean, and a bar down to 0 would stretch the log axis to ~1e-18
            lower = np.minimum(np.nan_to_num(fe[pos]), 0.9 * f[pos])
            ax[0, 0].errorbar(phi[pos], f[pos], yerr=[lower, np.nan_to_num(fe[pos])], marker=mk, ls="-",
                              color=color, label=f"N = {n}")
            dead = f == 0.0
            gone = ~np.isfinite(f)
            if floor is not None and dead.any():
                ax[0, 0].plot(phi[dead], np.full(dead.sum(), floor[0]), marker=mk, mfc="none", ls="none",
                              color=color, clip_on=False)
            if floor is not None and gone.any():
                ax[0, 0].plot(phi[gone], np.full(gone.sum(), floor[0]), marker="x", ls="none",
                              color=color, clip_on=False)
            n_absorbed_points += int(dead.sum())
            n_left_out += int(gone.sum())
            xf = L ** (1 / m.nu_perp) * (phi - cf.phi_c)
            yf = L ** (m.beta / m.nu_perp) * f
            ax[0, 1].plot(xf[pos], yf[pos], mk, color=color, label=f"N = {n}")
            ax[1, 0].errorbar(phi, t, yerr=np.nan_to_num(te), marker=mk, ls="-", label=f"N = {n}")
            xt = yt = np.full(phi.size, np.nan)
            if ct is not None:
                xt = L ** (1 / m.nu_perp) * (phi - ct.phi_c)
                yt = L ** (-m.nu_par / m.nu_perp) * t
                ax[1, 1].plot(xt, yt, mk, label=f"N = {n}")
            for j in range(phi.size):
                csv_rows.append({"scheme": scheme, "batch_fraction": bf, "step_size": step,
                                 "n": n, "L": L, "phi": phi[j], "f_inf": f[j], "f_inf_err": fe[j],
                                 "tau_r": t[j], "tau_r_err": te[j],
                                 "x_f": xf[j], "y_f": yf[j], "x_tau": xt[j], "y_tau": yt[j],
                                 "phi_c_f": cf.phi_c, "phi_c_f_err": cf.phi_c_err,
                                 "phi_c_f_err_method": cf.phi_c_err_method,
                                 "phi_c_f_at_boundary": cf.at_boundary, "quality_f": cf.quality,
                                 "phi_c_tau": ct.phi_c if ct else math.nan,
                                 "phi_c_tau_err": ct.phi_c_err if ct else math.nan,
                                 "phi_c_tau_err_method": ct.phi_c_err_method if ct else "",
                                 "phi_c_tau_at_boundary": ct.at_boundary if ct else "",
                                 "quality_tau": ct.quality if ct else math.nan})
        ax[0, 0].set(xlabel=r"packing fraction $\phi$", ylabel=r"steady-state activity $f_\infty^a$",
                     yscale="log", title="(a)")
        if floor is not None:
            ax[0, 0].set_ylim(*floor)
        notes = []
        if n_absorbed_points:
            notes.append(f"open markers on the bottom axis: {n_absorbed_points} point(s) where every seed "
                         "absorbed ($f_\\infty$ = 0)")
        if n_left_out:
            notes.append(f"x: {n_left_out} point(s) left out, a seed not steady")
        if notes:
            ax[0, 0].text(0.02, 0.07, "\n".join(notes), transform=ax[0, 0].transAxes, fontsize=6,
                          va="bottom", color="0.3")
            ax[0, 1].text(0.02, 0.98, f"not shown: {n_absorbed_points + n_left_out} point(s) with "
                          "$f_\\infty$ = 0 or left out", transform=ax[0, 1].transAxes, fontsize=6,
                          va="top", color="0.3")
        ax[0, 1].set(xlabel=r"$L^{1/\nu_\perp}(\phi-\phi_c)$", ylabel=r"$L^{\beta/\nu_\perp} f_\infty^a$",
                     yscale="log")
        ax[0, 1].set_title(_phi_c_title("(b)", cf), fontsize=9)
        ax[1, 0].set(xlabel=r"packing fraction $\phi$", ylabel=r"relaxation time $\tau_r$ (steps)",
                     yscale="log", title="(c)")
        if ct is not None:
            ax[1, 1].set_title(_phi_c_title("(d)", ct), fontsize=9)
        else:
            ax[1, 1].text(0.5, 0.5, "tau_r collapse not possible", ha="center", transform=ax[1, 1].transAxes)
            ax[1, 1].set(title="(d)")
        ax[1, 1].set(xlabel=r"$L^{1/\nu_\perp}(\phi-\phi_c)$",
                     ylabel=r"$L^{-\nu_\parallel/\nu_\perp}\tau_r$", yscale="log")
        for a in ax.flat:
            _legend(a, fontsize=7)
        fig.suptitle(f"{scheme}, $b_f$ = {_fmt(bf)}, {_step_label(scheme)} = {_fmt(step)} (2R), "
                     f"{pot}; Manna d={dim}: " + fr"$\beta$={m.beta}, $\nu_\parallel$={m.nu_par}, "
                     fr"$\nu_\perp$={m.nu_perp}, L = N$^{{1/d}}$", fontsize=9)
        fig.tight_layout()
        stem = f"fig3_{scheme}_bf{_fmt(bf)}_step{_fmt(step)}"
        written += _save(fig, out, stem, csv_rows)
    if not written:
        raise CollapseError("fig3: too few sizes: no scheme/step size has >= 2 system sizes with active points")
    return written


# ---- Fig. 4b -----------------------------------------------------------------------------------

def flatness_rows(runs: Sequence[Run], sigma_t=0.03, m=4000, seed=0, report=None) -> list[dict]:
    """Delta V of each run's last snapshot, averaged over seeds per (scheme, phi, b_f, ...). report: an
    ItemProgress (mpisim/core/progress.py) told of each run done, or None."""
    rows = []
    for key, members in group_runs(runs).items():
        vals, per = [], []
        for r in members:
            fl = flatness_of_run(r, sigma_t=sigma_t, m=m, seed=seed)
            vals.append(fl.delta_v_tilde_per_particle)
            per.append(fl)
            if report is not None:
                report.done()
        mean, err = seed_mean(vals, [per[0].delta_v_err / per[0].u0 / key_dict(key)["n"]])
        rows.append({**key_dict(key), "n_seeds": len(vals), "sigma_t": sigma_t, "m": m,
                     "u0": per[0].u0, "delta_v_tilde_per_particle": mean,
                     "delta_v_tilde_per_particle_err": err,
                     "delta_v_tilde": mean * key_dict(key)["n"],
                     "energy_per_particle": float(np.mean([p.energy_per_particle for p in per]))})
    return rows


def fig4b(rows: Sequence[dict], out: Path) -> list[Path]:
    """Delta V / (N U_0) against b_f, one line per (scheme, phi, N, step size) (Fig. 4b).

    A line joins only points that differ in b_f: runs of different N or step size at the same b_f are
    separate lines (joining them drew vertical segments that read as error bars)."""
    if not rows:
        raise AnalysisError("fig4b: no runs with snapshots for the flatness")
    fig = Figure(figsize=(5.5, 4))
    ax = fig.subplots()
    lines: dict = OrderedDict()
    for r in rows:
        lines.setdefault((r["scheme"], r["phi"], r["n"], row_step_size(r), r.get("potential")), []).append(r)
    vary_n = len({k[2] for k in lines}) > 1
    vary_step = len({k[3] for k in lines}) > 1
    for i, ((scheme, phi, n, step, _), rs) in enumerate(lines.items()):
        rs = sorted(rs, key=lambda r: (r["batch_fraction"] if r["batch_fraction"] is not None else 1.0))
        bf = [r["batch_fraction"] if r["batch_fraction"] is not None else 1.0 for r in rs]
        label = fr"{scheme}, $\phi$ = {phi:g}" + (f", N = {n}" if vary_n else "") + \
            (f", {_step_label(scheme)} = {_fmt(step)}" if vary_step else "")
        ax.errorbar(bf, [r["delta_v_tilde_per_particle"] for r in rs],
                    yerr=np.nan_to_num([r["delta_v_tilde_per_particle_err"] for r in rs]),
                    marker=MARKERS[i % len(MARKERS)], ls=("-" if scheme == "sgd" else "--") if len(rs) > 1 else "none",
                    capsize=2, label=label)
    s = rows[0]
    ax.set(xlabel=r"batch fraction $b_f$",
           ylabel=r"$\Delta V/(N U_0)$",
           title=fr"$\tilde\sigma = \sigma/R$ = {s['sigma_t']:g}, M = {s['m']}, $U_0 = U(r{{=}}0)$")
    if len({b for r in rows for b in [r["batch_fraction"]]}) < 2:
        ax.text(0.5, 0.02, "one batch fraction only: no b_f dependence to show", transform=ax.transAxes,
                ha="center", va="bottom", fontsize=7, color="0.3")
    _legend(ax, fontsize=7)
    fig.tight_layout()
    return _save(fig, Path(out), "fig4b", rows)


# ---- MSD figures -------------------------------------------------------------------------------

def msd_groups(runs: Sequence[Run], k_at: int | None = None) -> list[dict]:
    """Per group: seed-mean MSD curve, exponent c, and MSD at step ``k_at`` (if reached)."""
    out = []
    for key, members in group_runs(runs).items():
        m = MSD().compute(members)
        d = {**key_dict(key), "effective_kick": members[0].params.effective_kick,
             "n_seeds": len(members), "c": m.exponent.c, "c_err": m.exponent.c_err,
             "steps": m.steps, "msd": m.msd, "msd_err": m.msd_err}
        if k_at is not None and m.steps[-1] >= k_at:
            d["msd_at"], d["msd_at_err"] = m.at(k_at)
        out.append(d)
    return out


def _msd_vs_kick(ax, groups, schemes, k_at, csv_rows):
    any_ = False
    for i, s in enumerate(schemes):
        g = sorted((g for g in groups if g["scheme"] == s and "msd_at" in g),
                   key=lambda g: g["effective_kick"] or 0)
        if not g:
            continue
        any_ = True
        ax.errorbar([x["effective_kick"] for x in g], [x["msd_at"] for x in g],
                    yerr=np.nan_to_num([x["msd_at_err"] for x in g]), marker=MARKERS[i], label=s)
        for x in g:
            csv_rows.append({"scheme": s, "phi": x["phi"], "n": x["n"], "batch_fraction": x["batch_fraction"],
                             "effective_kick": x["effective_kick"], "k": k_at,
                             "msd": x["msd_at"], "msd_err": x["msd_at_err"], "c": x["c"], "c_err": x["c_err"]})
    ax.set(xscale="log", yscale="log", xlabel=r"kick size $\epsilon = \alpha b_f$ (2R)",
           ylabel=fr"MSD at $k = {k_at}$ ((2R)$^2$)")
    _legend(ax, fontsize=7)
    return any_


def fig5a(groups: Sequence[dict], out: Path, k_at: int = 10000) -> list[Path]:
    """MSD at step k against kick size for SGD, pairwise BRO and their SA (Fig. 5a)."""
    fig = Figure(figsize=(5, 4))
    ax = fig.subplots()
    rows: list = []
    if not _msd_vs_kick(ax, groups, PAIRWISE_FAMILY + ("gd",), k_at, rows):
        raise AnalysisError(f"fig5a: no SGD / pairwise BRO / SA run reaches step {k_at}")
    ax.set_title(r"SGD with $\epsilon = \alpha b_f$")
    fig.tight_layout()
    return _save(fig, Path(out), "fig5a", rows)


def figS1(groups: Sequence[dict], out: Path, k_at: int = 10000) -> list[Path]:
    """MSD(k) per scheme family, and MSD at k vs kick size for the individual family (Fig. S1)."""
    fig = Figure(figsize=(13, 4))
    ax = fig.subplots(1, 3)
    rows: list = []
    any_curve = False
    for a, fam, title in ((ax[0], PAIRWISE_FAMILY, "(a) pairwise"), (ax[1], INDIVIDUAL_FAMILY, "(b) individual")):
        for i, s in enumerate(fam):
            for g in (g for g in groups if g["scheme"] == s):
                k, y = g["steps"], g["msd"]
                pos = (k > 0) & (y > 0)
                if not pos.any():
                    continue
                any_curve = True
                a.plot(k[pos], y[pos], label=fr"{s}, $\epsilon_{{eff}}$={_fmt(g['effective_kick'])}, "
                                             fr"c={g['c']:.2f}")
                for kk, yy, ee in zip(k, y, g["msd_err"]):
                    rows.append({"panel": title[:3], "scheme": s, "effective_kick": g["effective_kick"],
                                 "phi": g["phi"], "k": int(kk), "msd": yy, "msd_err": ee})
        a.set(xscale="log", yscale="log", xlabel="time step $k$", ylabel="MSD ((2R)$^2$)", title=title)
        if not a.lines:
            _empty_note(a, "no runs of\n" + ", ".join(fam) + "\nwith an MSD")
        _legend(a, fontsize=6)
    if not _msd_vs_kick(ax[2], groups, INDIVIDUAL_FAMILY, k_at, rows):
        _empty_note(ax[2], "no runs of\n" + ", ".join(INDIVIDUAL_FAMILY) + f"\nthat reach step k = {k_at}")
    ax[2].set_title("(c) individual")
    if not any_curve:
        raise AnalysisError("figS1: no MSD data")
    fig.tight_layout()
    return _save(fig, Path(out), "figS1", rows)


# ---- Fig. 5b -----------------------------------------------------------------------------------

FORM_STYLES = {"linear": ":", "sqrt": "--", "power": "-."}
FORM_LABELS = {"linear": r"$\epsilon$", "sqrt": r"$\sqrt{\epsilon}$", "power": r"$\epsilon^a$"}


def fig5b(cp: CriticalPoints, out: Path) -> list[Path]:
    """phi_c against step size per family, with every extrapolation form to zero (Fig. 5b).

    Values are points with error bars; a step size whose fit only bounds phi_c is an open triangle at
    the limit pointing the way the bound goes (never a value, never in an extrapolation). One curve per
    form (linear dotted, sqrt dashed, free power dash-dotted), its phi_c(0) +- error at eps = 0 and its
    chi^2/dof and AICc (or AIC) in the legend; the preferred form is marked with a star. Shaded bars:
    each step size's absorption bracket, and left of eps = 0 the phi_c(0) range of each form through
    every bracket (:func:`analysis.critical.extrapolate_brackets`).
    """
    def bracketed(p):
        return np.isfinite(p["phi_all_absorbed"]) and np.isfinite(p["phi_none_absorbed"])

    pts = [p for p in cp.points if p["status"] in ("value", "bound") or bracketed(p)]
    if not pts:
        raise CollapseError("fig5b: phi_c could not be fitted for any step size (too few sizes or points)")
    fig = Figure(figsize=(6.5, 4.8))
    ax = fig.subplots()
    fams: dict = OrderedDict()
    for p in pts:
        fams.setdefault((p["scheme"], p["batch_fraction"], p["potential"], p["dim"]), []).append(p)
    rows, span = [], []
    xmax = max(p["step_size"] or 0 for p in pts)
    for i, (fk, ps) in enumerate(fams.items()):
        ps = sorted(ps, key=lambda p: p["step_size"] or 0)
        family = tuple(zip(FAMILY_FIELDS, fk))     # the key of cp.comparisons and cp.brackets
        vals = [p for p in ps if p["status"] == "value"]
        bounds = [p for p in ps if p["status"] == "bound"]
        color = f"C{i % 10}"
        lab = f"{fk[0]}, $b_f$={_fmt(fk[1])}"
        if vals:
            ax.errorbar([p["step_size"] for p in vals], [p["phi_c"] for p in vals],
                        yerr=np.nan_to_num([p["phi_c_err"] for p in vals]), marker=MARKERS[i % len(MARKERS)],
                        ls="none", color=color, label=lab)
        for k, p in enumerate(bounds):
            up = p["at_boundary"] == "upper"
            ax.plot([p["step_size"]], [p["phi_c_limit"]], marker="^" if up else "v", mfc="none", color=color,
                    ms=8, ls="none", label=None if vals or k else lab)
            ax.annotate("", xy=(p["step_size"], p["phi_c_limit"] + (0.006 if up else -0.006)),
                        xytext=(p["step_size"], p["phi_c_limit"]),
                        arrowprops=dict(arrowstyle="->", color=color, lw=1))
        exs = [e for e in cp.extrapolations
               if (e["scheme"], e["batch_fraction"], e["potential"], e["dim"]) == fk]
        for j, e in enumerate(exs):
            if not np.isfinite(e["phi_c0"]):
                continue
            fit = cp.comparisons[family]["fits"][e["form"]]
            xx = np.linspace(0, xmax, 100)
            star = "*" if e["preferred"] else ""
            ax.plot(xx, fit.predict(xx), ls=FORM_STYLES.get(e["form"], ":"), color=color, lw=1,
                    label=(fr"  {FORM_LABELS.get(e['form'], e['form'])}{star}: $\phi_c(0)$ = {e['phi_c0']:.3f} $\pm$ "
                           fr"{e['phi_c0_err']:.3f}, $\chi^2$/dof = "
                           + (f"{e['chi2_per_dof']:.2g}" if np.isfinite(e["chi2_per_dof"]) else "-")
                           + (f", AICc = {e['aicc']:.1f}" if np.isfinite(e["aicc"]) else
                              f", AIC = {e['aic']:.1f}" if e["dof"] >= 1 else "")))
            # phi_c(0) of each form side by side just left of eps = 0 (their bars would overlap)
            ax.errorbar([-0.015 * xmax * j], [e["phi_c0"]], yerr=[e["phi_c0_err"]],
                        marker="*" if e["preferred"] else "_", color=color, ms=9, capsize=2)
        # the absorption brackets (every seed absorbed at the lower end, none at the upper) and the
        # phi_c(0) of every curve of each form through all of them, left of eps = 0
        br_pts = [p for p in ps if bracketed(p)]
        for k, p in enumerate(br_pts):
            ax.vlines(p["step_size"] + 0.012 * xmax, p["phi_all_absorbed"], p["phi_none_absorbed"], color=color,
                      lw=5, alpha=0.45, label=None if k else f"  absorption brackets ({lab})")
            span.extend([p["phi_all_absorbed"], p["phi_none_absorbed"]])
        brs = cp.brackets.get(family, {})
        for j, (form, b) in enumerate(brs.items()):
            if b.consistent and np.isfinite(b.phi_c0_lo) and np.isfinite(b.phi_c0_hi):
                ax.vlines(-0.012 * xmax * (j + 1), b.phi_c0_lo, b.phi_c0_hi, color=color,
                          lw=5 - 1.5 * j, alpha=0.45,
                          label=fr"  {FORM_LABELS.get(form, form)} through every bracket: $\phi_c(0)$ in "
                                fr"[{b.phi_c0_lo:.3f}, {b.phi_c0_hi:.3f}] (bar {j + 1} left of 0)")
                span.extend([b.phi_c0_lo, b.phi_c0_hi])
            elif not b.consistent:
                ax.plot([], [], ls="none", label=fr"  {FORM_LABELS.get(form, form)}: no curve through the brackets")
        for p in ps:
            rows.append({**p, **{f"phi_c0_{e['form']}": e["phi_c0"] for e in exs},
                         **{f"phi_c0_err_{e['form']}": e["phi_c0_err"] for e in exs},
                         "preferred_form": next((e["form"] for e in exs if e["preferred"]), "")})
    targets = sorted(t for t in {cp.target_of(int(p["dim"])) for p in pts} if np.isfinite(t))
    for t in targets:
        ax.axhline(t, color="gray", lw=0.8, ls="--", label=fr"$\phi_{{RCP}}\approx {t:g}$")
    # the y range from the measured points, the bounds, the targets and the phi_c(0) that are not wild
    # (an exact three-point power fit can put phi_c(0) anywhere; its number is in the legend)
    span += targets + [p["phi_c"] for p in pts if p["status"] == "value"] + \
        [p["phi_c_limit"] for p in pts if p["status"] == "bound"]
    span += [e["phi_c0"] for e in cp.extrapolations
             if np.isfinite(e["phi_c0"]) and np.isfinite(e["target"]) and abs(e["phi_c0"] - e["target"]) < 0.1]
    span = [v for v in span if np.isfinite(v)]
    pad = max(0.01, 0.15 * (max(span) - min(span)))
    ax.set_ylim(min(span) - pad, max(span) + pad)
    n_bounds = sum(1 for p in pts if p["status"] == "bound")
    title = "* = form the data prefer (smallest AICc; AIC where AICc is undefined)"
    if n_bounds:
        title += f"; open triangles: {n_bounds} bound(s), not values, not fitted"
    ax.set_title(title, fontsize=8)
    ax.set(xlabel=r"step size $\alpha$ or $\epsilon$ (2R)", ylabel=r"critical packing fraction $\phi_c$")
    if xmax > 0:  # room for the phi_c(0) bars left of 0 and the brackets right of each step
        ax.set_xlim(-0.05 * xmax, 1.06 * xmax)
    _legend(ax, fontsize=6)
    fig.tight_layout()
    forms = [e["form"] for e in cp.extrapolations[:len(cp.forms)]]
    cols = ["scheme", "batch_fraction", "potential", "dim", "step_size", "status", "status_reason", "phi_c", "phi_c_err",
            "phi_c_bound", "phi_c_limit", "phi_c_optimum", "phi_c_err_fit", "phi_c_err_bootstrap",
            "quality", "method", "sizes", "excluded_points"]
    cols += [f"phi_c0_{f}" for f in forms] + [f"phi_c0_err_{f}" for f in forms] + ["preferred_form"]
    paths = _save(fig, Path(out), "fig5b", rows, cols)
    from .critical import EXTRAPOLATION_COLUMNS
    return paths + [write_csv(Path(out) / "fig5b_extrapolations.csv", cp.extrapolations, EXTRAPOLATION_COLUMNS)]


# ---- Fig. S2 -----------------------------------------------------------------------------------

def sofk_groups(runs: Sequence[Run], k_max: float = 10.0, bins: int | None = None,
                k_fit_max: float = 1.0, report=None) -> list[dict]:
    """Seed-mean binned S(k) of the last snapshot per group, and alpha of S ~ k^alpha. report: an
    ItemProgress told of each run done, or None."""
    out = []
    for key, members in group_runs(runs).items():
        box = members[0].box
        nb = bins if bins is not None else default_bins(box, k_max)
        sks = []
        for r in members:
            sk = StructureFactor(nb, k_max, 0.0).compute(r.positions(-1), r.box)
            sks.append(sk)
            if report is not None:
                report.done()
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            S = np.nanmean([s.S_k for s in sks], axis=0)
        d = {**key_dict(key), "k": sks[0].k_mean, "S": S, "counts": sks[0].k_counts}
        try:
            ok = np.isfinite(S)
            d["alpha"], d["alpha_err"], _, _ = fit_power_law(d["k"][ok], S[ok], sks[0].min_valid_k * (1 - 1e-9),
                                                             k_fit_max, d["counts"][ok])
        except AnalysisError:
            d["alpha"], d["alpha_err"] = math.nan, math.nan
        d["history"] = small_k_history(members[0]) if members[0].has_structure_factor else None
        out.append(d)
    return out


def small_k_history(run: Run, n_bins: int = 5) -> dict:
    """S at the smallest k against step, from a run's in-run S(k) (``[structure_factor]``): per recorded
    step the mean of S over the ``n_bins`` smallest-k bins that hold k-vectors; ``k_max`` is the largest
    k of those bins."""
    sk = run.structure_factor()
    filled = np.flatnonzero(sk["count"] > 0)[:n_bins]
    if not filled.size:
        raise AnalysisError(f"{run.path}: its in-run S(k) has no filled k bins")
    return {"step": np.asarray(sk["step"]), "S": np.asarray(sk["S"])[:, filled].mean(axis=1),
            "k_max": float(sk["k_mean"][filled[-1]])}


def figS2(groups: Sequence[dict], out: Path) -> list[Path]:
    """S(k) per scheme near phi_c (Fig. S2); beside it S at the smallest k against step for the groups whose
    runs measured S(k) in the run (key ``history``: :func:`small_k_history` of the group's first run; also
    written to ``figS2_history.csv``)."""
    if not groups:
        raise AnalysisError("figS2: no runs with snapshots")
    histories = [g for g in groups if g.get("history") is not None]
    fig = Figure(figsize=(9.5 if histories else 5, 4))
    ax, *hax = fig.subplots(1, 2 if histories else 1, squeeze=False)[0]
    rows, history_rows = [], []
    for i, g in enumerate(groups):
        ok = np.isfinite(g["S"]) & (g["S"] > 0)
        alpha = (fr", $\alpha_S$={g['alpha']:.2f}" if np.isfinite(g["alpha"]) else "")
        label = fr"{g['scheme']}, $\phi$={g['phi']:g}, N={g['n']}"
        ax.plot(g["k"][ok], g["S"][ok], marker=MARKERS[i % len(MARKERS)], ms=3, label=label + alpha)
        if g.get("history") is not None:
            h = g["history"]
            hax[0].plot(h["step"], h["S"], marker=MARKERS[i % len(MARKERS)], ms=3,
                        label=label + fr", $k \leq$ {h['k_max']:.2g}")
            history_rows += [{"scheme": g["scheme"], "phi": g["phi"], "n": g["n"],
                              "batch_fraction": g["batch_fraction"], "step": int(st), "S_small_k": s,
                              "k_max": h["k_max"]} for st, s in zip(h["step"], h["S"])]
        for k, s, c in zip(g["k"], g["S"], g["counts"]):
            rows.append({"scheme": g["scheme"], "phi": g["phi"], "n": g["n"],
                         "batch_fraction": g["batch_fraction"], "k": k, "S": s, "n_kvectors": c,
                         "alpha": g["alpha"], "alpha_err": g["alpha_err"]})
    ax.set(xscale="log", yscale="log", xlabel=r"wave number $k$ (1/(2R))", ylabel=r"structure factor $S(k)$")
    no_fit = sum(1 for g in groups if not np.isfinite(g["alpha"]))
    if no_fit:
        ax.set_title(fr"$\alpha_S$ of $S \propto k^{{\alpha_S}}$ not fitted for {no_fit} of {len(groups)} "
                     "curves: too few k bins below the fit range's end (box too small)", fontsize=7)
    _legend(ax, fontsize=7)
    if histories:
        hax[0].set(yscale="log", xlabel="step", ylabel="in-run $S$, mean over the smallest-$k$ bins")
        _legend(hax[0], fontsize=7)
    fig.tight_layout()
    paths = _save(fig, Path(out), "figS2", rows)
    if histories:
        paths.append(write_csv(Path(out) / "figS2_history.csv", history_rows))
    return paths


# ---- hyperuniformity (noise models) ------------------------------------------------------------

HU_COLUMNS = ("label", "scheme", "dim", "n", "phi", "learning_rate", "noise_amplitude", "temporal_correlation",
              "spatial_correlation", "n_runs", "n_frames", "k", "S", "S_err", "n_kvectors", "alpha", "alpha_err",
              "k_fit_min", "k_fit_max", "fit_shells", "lambda", "lambda_err", "energy_per_particle", "energy_per_particle_sem")


def fig_hyperuniformity(groups: Sequence[dict], out: Path) -> list[Path]:
    """S(k) at small k for correlated and uncorrelated pgd/spgd noise, with the fitted k^alpha
    (:func:`analysis.hyperuniformity.hyperuniformity_groups`)."""
    from .hyperuniformity import draw_hyperuniformity
    if not groups:
        raise AnalysisError("hyperuniformity: no pgd/spgd runs with snapshots")
    fig = Figure(figsize=(6, 4.5))
    ax = fig.subplots()
    draw_hyperuniformity(ax, OrderedDict((g["label"], g["hu"]) for g in groups))
    ax.axhline(1.0, color="gray", lw=0.8, ls=":")
    g0 = groups[0]
    same = all((g["phi"], g["n"], g["learning_rate"], g["noise_amplitude"]) ==
               (g0["phi"], g0["n"], g0["learning_rate"], g0["noise_amplitude"]) for g in groups)
    title = f"d = {g0['dim']}" + (fr", N = {g0['n']}, $\phi$ = {g0['phi']:g}, lr = {_fmt(g0['learning_rate'])}, "
                                  fr"$\sigma$ = {g0['noise_amplitude']:g}" if same else "")
    kmin, kmax = min(g["k_fit_min"] for g in groups), max(g["k_fit_max"] for g in groups)
    ax.set_title(title + f"\nfit $S \\propto k^\\alpha$ over k in [{kmin:.2g}, {kmax:.2g}]", fontsize=9)
    _legend(ax, fontsize=7)
    fig.tight_layout()
    rows = []
    for g in groups:
        hu = g["hu"]
        for k, sk, se, count in zip(hu.k, hu.S_k, hu.S_k_err, hu.k_counts):
            rows.append({**{c: g[c] for c in HU_COLUMNS if c in g}, "k": float(k), "S": float(sk),
                         "S_err": float(se), "n_kvectors": int(count)})
    return _save(fig, Path(out), "hyperuniformity", rows, HU_COLUMNS)


# ---- driver ------------------------------------------------------------------------------------

def make_figures(runs: Sequence[Run], out, which: Iterable[str] | None = None, *,
                 activity_kwargs: dict | None = None, k_at: int = 10000, flatness_m: int = 4000,
                 sigma_t: float = 0.03, sofk_k_max: float = 10.0, hu_k_fit_max: float | None = None,
                 hu_frames: int = 5, bootstrap: int = 100, log=print, progress_seconds: float = 10.0) -> list[Path]:
    """Compute what the requested figures need and write them to ``out``.

    ``progress_seconds``: progress of the per-run measurements (Fig. 4b's flatness, Fig. S2's S(k)) on
    stderr every that many seconds (mpisim/core/progress.py; 0: none).

    ``bootstrap``: resamplings of the seeds for the bootstrap error of phi_c in Fig. 5b (0: none).
    ``which`` None means every figure the data allow (others are skipped with a note via ``log``);
    figures named explicitly raise an :class:`AnalysisError` if their data are missing.
    """
    explicit = which is not None
    which = list(ALL_FIGURES if which is None else which)
    bad = [w for w in which if w not in ALL_FIGURES]
    if bad:
        raise AnalysisError(f"unknown figure(s) {', '.join(bad)}: choose from {', '.join(ALL_FIGURES)}")
    out = Path(out)
    written: list[Path] = []
    table = None
    msd = None
    snap_runs = [r for r in runs if r.has_positions]

    def attempt(name, fn):
        nonlocal written
        try:
            written += fn()
        except AnalysisError as err:
            if explicit:
                raise
            log(f"skipped {name}: {err}")

    def get_table():
        nonlocal table
        if table is None:
            table = ActivityTable(**(activity_kwargs or {})).compute(runs)
            if table.exclusion_note:
                log(f"note: {table.exclusion_note}")
        return table

    def report(what):
        return ItemProgress(len(snap_runs), what, seconds=progress_seconds, enabled=progress_seconds > 0)

    def measured(what, fn):
        rep = report(what)
        try:
            return fn(rep)
        finally:
            rep.close()

    def get_msd():
        nonlocal msd
        if msd is None:
            msd = msd_groups(runs, k_at)
        return msd

    if "fig3" in which:
        attempt("fig3", lambda: fig3(get_table().rows, out))
    if "fig5b" in which:
        def do_fig5b():
            cp = CriticalPoints(n_bootstrap=bootstrap).compute(get_table().rows, get_table().per_run)
            for line in cp.verdicts():
                log(f"fig5b: {line}")
            return fig5b(cp, out)
        attempt("fig5b", do_fig5b)
    if "fig4b" in which:
        attempt("fig4b", lambda: fig4b(measured("fig4b: flatness of runs", lambda rep: flatness_rows(
            snap_runs, sigma_t=sigma_t, m=flatness_m, report=rep)), out))
    if "fig5a" in which:
        attempt("fig5a", lambda: fig5a(get_msd(), out, k_at))
    if "figS1" in which:
        attempt("figS1", lambda: figS1(get_msd(), out, k_at))
    if "figS2" in which:
        attempt("figS2", lambda: figS2(measured("figS2: S(k) of runs", lambda rep: sofk_groups(
            snap_runs, k_max=sofk_k_max, report=rep)), out))
    if "hyperuniformity" in which:
        from .hyperuniformity import hyperuniformity_groups
        attempt("hyperuniformity", lambda: fig_hyperuniformity(
            hyperuniformity_groups(snap_runs, k_fit_max=hu_k_fit_max, max_frames=hu_frames), out))
    return written
