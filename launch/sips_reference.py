"""The authors' code (guanming-zhang/sips) driven through its own Python bindings, set up as mpisim is.

Not part of the tests and never vendored: sips is built outside the repository (docs/reference-sips.md,
section 2) and found through ``--sips PATH`` or ``$SIPS_BUILD`` (the directory holding the compiled
``sips`` module). Without either, every subcommand prints why it skipped and exits 0.

    launch/sips_reference time --n 1e5 --phi 0.6 --kick 0.05 --steps 100        sips alone, one JSON line
    launch/sips_reference bench --n 1e5 --phi 0.6 --kick 0.05 --repeat 3        mpisim and sips alternating
    launch/sips_reference activity --out runs/sips-phic/runs.jsonl --n 1000 \\
        --phi 0.58,0.59,0.60 --seeds 1-8 --kick 0.1 --steps 20000 --log-every 100  both codes, same starts
    launch/sips_reference summary runs/sips-phic/runs.jsonl                      table per (code, N, phi)
    launch/sips_reference compare RUNS.jsonl [MORE.jsonl] --at 100,500,1000       absorption-time tests, f_a(k)
                                                                                 differences, last active counts

Same set-up in both codes (docs/reference-sips.md, section 2): radius R = 1/2 (lengths in diameters),
the box edge from L^d phi = N v_d R^d (mpisim's RunConfig.box_edges), eps in diameters. sips' kick
argument is a length (its run.py passes eps * 2r), so with 2R = 1 it is eps itself. The activity runs
start both codes from mpisim's seeded uniform positions (system.seed = the run's seed), so each seed
compares the two dynamics from the same configuration.
"""
import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SIPS_CLASSES = {"bro-pairwise": "ReciprocalPairwiseBROCList", "bro-nonreciprocal": "NonReciprocalPairwiseBROCList",
                "bro-individual": "ParticlewiseBROCList"}
NEVER = 10 ** 15        # n_save / n_rec that no step of a run reaches (sips' run() then records nothing)


def sips_path(arg):
    """The sips build directory from --sips or $SIPS_BUILD; None when neither is given."""
    return arg or os.environ.get("SIPS_BUILD") or None


def load_sips(path):
    """Import the compiled ``sips`` module from ``path``; exit 2 with one line when it is not there."""
    import importlib.util
    import glob
    hits = sorted(glob.glob(os.path.join(path, "sips*.so")))
    if not hits:
        _fail(f"no compiled sips module (sips*.so) in --sips/SIPS_BUILD = {path} "
              f"(how to build it: docs/reference-sips.md section 2)")
    spec = importlib.util.spec_from_file_location("sips", hits[0])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fail(msg):
    print(f"sips_reference: {msg}", file=sys.stderr)
    sys.exit(2)


@contextlib.contextmanager
def stdout_to_stderr():
    """sips prints progress with std::cout (file descriptor 1); keep our stdout for results only."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def mpisim_config(n, phi, dim, kick, seed, scheme="bro-pairwise", steps=1000, log_every=100, step_kind="auto"):
    return {"system": {"n": int(n), "phi": phi, "dim": dim, "seed": int(seed)},
            "dynamics": {"scheme": scheme, "kick_size": kick},
            "run": {"steps": int(steps), "log_every": int(log_every), "progress_seconds": 0.0,
                    "stop_when_absorbed": True, "step_kind": step_kind}}


def start_state(n, phi, dim, seed):
    """mpisim's box edges and seeded initial positions (N, dim) for this set-up, radius 1/2."""
    from mpisim.config import RunConfig
    from mpisim.sources import initial_positions
    cfg = RunConfig.from_dict(mpisim_config(n, phi, dim, 0.1, seed))
    box = np.asarray(cfg.box_edges(), dtype=np.float64)
    pos = initial_positions(int(seed), np.arange(int(n), dtype=np.int64), dim, box)[:, :dim]
    return box[:dim], np.ascontiguousarray(pos)


def make_sips(sips, scheme, kick, box, pos, radius=0.5):
    dim = pos.shape[1]
    cls = getattr(sips.algorithms, f"{SIPS_CLASSES[scheme]}{dim}D")
    # (kick_size, radii, box_size, x0, ncellx_scale, balance_omp), as sips' scripts/run.py calls it
    return cls(float(kick), np.full(len(pos), radius), [float(b) for b in box], pos.ravel().copy(), 1.0, True)


# ------------------------------------------------------------------------------------------- timing
def time_sips(sips, scheme, n, phi, dim, kick, steps, seed):
    """Wall and CPU time of ``steps`` sips one_step() calls (through run(), nothing recorded), after
    one warm-up step. Set-up (cell lists, first activity) is timed apart."""
    box, pos = start_state(n, phi, dim, seed)
    with tempfile.TemporaryDirectory() as out, stdout_to_stderr():
        t0 = time.perf_counter()
        alg = make_sips(sips, scheme, kick, box, pos)
        # run(n_steps, n_save, n_rec, starting_step, cutoff, output_dir, save_mode, compression):
        # step 0 saves and records (three activity evaluations), then one step.
        alg.run(1, NEVER, NEVER, 0, 1.0, out, "concise", False)
        setup = time.perf_counter() - t0
        if steps >= 1000:
            print("sips_reference: note: sips' run() evaluates the activity every 1000 steps; that cost "
                  "is inside the timing", file=sys.stderr)
        c0, t0 = time.process_time(), time.perf_counter()
        alg.run(1 + steps, NEVER, NEVER, 1, 1.0, out, "concise", False)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"code": "sips", "scheme": scheme, "n": int(n), "phi": phi, "dim": dim, "kick": kick, "steps": steps,
            "seconds": wall, "cpu_seconds": cpu, "particle_steps_per_s": n * steps / wall,
            "particle_steps_per_cpu_s": n * steps / cpu, "setup_s": setup, "loadavg": os.getloadavg(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "")}


def cmd_time(a):
    sips = load_sips(a.sips)
    print(json.dumps(time_sips(sips, a.scheme, int(a.n), a.phi, a.dim, a.kick, a.steps, a.seed)), flush=True)


def cmd_bench(a):
    """mpisim (launch/bench.py, dense step) and sips alternating, each in a fresh process, one core."""
    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1", SIPS_BUILD=a.sips)
    py = sys.executable
    common = ["--scheme", a.scheme, "--n", str(a.n), "--phi", str(a.phi), "--dim", str(a.dim),
              "--kick", str(a.kick), "--steps", str(a.steps)]
    commit = subprocess.run(["git", "-C", HERE, "log", "-1", "--format=%h %s"], capture_output=True,
                            text=True).stdout.strip()
    print(f"# mpisim {commit[:80]}", flush=True)
    print(f"# {a.scheme} N={int(a.n)} phi={a.phi} d={a.dim} eps={a.kick} diameters, {a.steps} timed steps, "
          f"OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1; shared machine: see the load averages", flush=True)
    print(f"{'rep':>3s} {'code':6s} {'particle-steps/s':>16s} {'per CPU-s':>10s} {'wall s':>7s} {'CPU s':>7s} "
          f"{'load 1/5/15 min':>16s}", flush=True)
    rows = []
    for rep in range(a.repeat):
        for code in ("mpisim", "sips"):
            if code == "mpisim":
                cmd = [py, os.path.join(HERE, "bench.py"), *common, "--step-kind", "dense"]
            else:
                cmd = [py, os.path.abspath(__file__), "time", "--sips", a.sips, *common]
            p = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if p.returncode != 0:
                _fail(f"{code} run failed ({' '.join(cmd)}):\n{p.stderr[-2000:]}")
            r = json.loads(p.stdout.strip().splitlines()[-1])
            r.update(code=code, rep=rep, mpisim_commit=commit.split()[0])
            rows.append(r)
            la = r.get("loadavg") or [float("nan")] * 3
            print(f"{rep:3d} {code:6s} {r['particle_steps_per_s']:16.3e} {a.n * a.steps / r['cpu_seconds']:10.3e} "
                  f"{r['seconds']:7.2f} {r['cpu_seconds']:7.2f} {la[0]:5.2f} {la[1]:5.2f} {la[2]:5.2f}", flush=True)
    if a.out:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, "a") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")

    def best(code, key):
        return max(a.n * a.steps / r[key] for r in rows if r["code"] == code)
    for key, what in (("seconds", "wall"), ("cpu_seconds", "CPU")):
        m, s = best("mpisim", key), best("sips", key)
        print(f"# best of {a.repeat} by {what} time: mpisim {m:.3e}, sips {s:.3e} particle-steps/s; "
              f"ratio {m / s:.2f}", flush=True)


# ----------------------------------------------------------------------------------------- activity
def run_sips_activity(sips, scheme, n, phi, dim, kick, steps, log_every, seed):
    box, pos = start_state(n, phi, dim, seed)
    with tempfile.TemporaryDirectory() as out, stdout_to_stderr():
        alg = make_sips(sips, scheme, kick, box, pos)
        # steps + 1 as sips' run.py does, so the configuration after `steps` updates is measured too.
        alg.run(steps + 1, NEVER, log_every, 0, 1.0, out, "concise", False)
        with open(os.path.join(out, "stat_data.json")) as f:
            stat = json.load(f)
        absorbed_at = None
        for name in os.listdir(out):
            if name.startswith("data_iter") and name != "data_iter0.json":
                absorbed_at = int(name[len("data_iter"):-len(".json")])
        if absorbed_at is None:
            with open(os.path.join(out, "data_iter0.json")) as f:
                if json.load(f)["activity"] < 1.0 / n:
                    absorbed_at = 0
    steps_rec = [int(s) for s in stat["time_steps"]]
    acts = [float(x) for x in stat["activities"]]
    # sips stops at the first checked step with f_a < 1/N and writes that configuration as
    # data_iter{k}.json (k a multiple of log_every or of 1000); its series then ends before k.
    if absorbed_at is not None and (not steps_rec or steps_rec[-1] != absorbed_at):
        steps_rec.append(absorbed_at)
        acts.append(0.0)
    return steps_rec, acts, absorbed_at


def run_mpisim_activity(scheme, n, phi, dim, kick, steps, log_every, seed):
    from mpisim import Simulation
    sim = Simulation.from_config(mpisim_config(n, phi, dim, kick, seed, scheme, steps, log_every), write=False)
    sim.run()
    obs = sim.observables
    absorbed = int(sim.absorbed_step) if sim.absorbed_step >= 0 else None
    return [int(s) for s in obs["step"]], [float(x) for x in obs["activity"]], absorbed


def parse_list(text, kind=float):
    out = []
    for part in str(text).split(","):
        if "-" in part and kind is int:
            lo, hi = part.split("-")
            out.extend(range(int(lo), int(hi) + 1))
        else:
            out.append(kind(float(part)) if kind is int else kind(part))
    return out


def cmd_activity(a):
    sips = load_sips(a.sips)
    done = set()
    if os.path.exists(a.out):
        with open(a.out) as f:
            for line in f:
                r = json.loads(line)
                done.add((r["code"], r["scheme"], r["n"], r["phi"], r["dim"], r["kick"], r["steps"], r["seed"]))
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    codes = a.codes.split(",")
    for n in parse_list(a.n, int):
        for phi in parse_list(a.phi):
            for seed in parse_list(a.seeds, int):
                for code in codes:       # alternate the codes run by run: load drifts hit both alike
                    key = (code, a.scheme, n, phi, a.dim, a.kick, a.steps, seed)
                    if key in done:
                        continue
                    c0 = time.process_time()
                    if code == "sips":
                        steps, acts, absorbed = run_sips_activity(sips, a.scheme, n, phi, a.dim, a.kick, a.steps,
                                                                  a.log_every, seed)
                    else:
                        steps, acts, absorbed = run_mpisim_activity(a.scheme, n, phi, a.dim, a.kick, a.steps,
                                                                    a.log_every, seed)
                    r = dict(zip(("code", "scheme", "n", "phi", "dim", "kick", "steps", "seed"), key),
                             log_every=a.log_every, absorbed_step=absorbed, step=steps, activity=acts,
                             cpu_seconds=time.process_time() - c0, loadavg=os.getloadavg())
                    with open(a.out, "a") as f:
                        f.write(json.dumps(r) + "\n")
                    print(f"{code:6s} N={n} phi={phi} seed={seed}: absorbed at {absorbed}, "
                          f"f_a(last) = {acts[-1] if acts else float('nan'):.4f}, "
                          f"{r['cpu_seconds']:.1f} CPU s", flush=True)


def seen_absorbed(step, log_every):
    """The step at which sips' run() sees an absorption that happened at ``step`` (f_a(x_step) = 0): it
    checks f_a at the multiples of n_rec (our log_every) and of 1000 (base_algorithm.hpp), so the first
    such step at or after ``step``. mpisim's exact step is mapped with this before the two are compared."""
    return min(-(-step // log_every) * log_every, -(-step // 1000) * 1000)


def _sem(x):
    return float(np.std(x, ddof=1) / np.sqrt(len(x))) if len(x) > 1 else float("nan")


def activity_at(r, k):
    """f_a(k) of one run: its logged value, 0 once absorbed (at or before k), None if k was not logged."""
    if r["absorbed_step"] is not None and r["absorbed_step"] <= k:
        return 0.0
    st = np.asarray(r["step"])
    sel = st == k
    return float(np.asarray(r["activity"])[sel][0]) if sel.any() else None


def cmd_summary(a):
    with open(a.runs) as f:
        rows = [json.loads(line) for line in f]
    groups = {}
    for r in rows:
        groups.setdefault((r["scheme"], r["n"], r["kick"], r["steps"], r["phi"]), {}).setdefault(r["code"], []).append(r)
    at = [int(k) for k in a.at.split(",")] if a.at else []
    print(f"{'scheme':16s} {'N':>5s} {'eps':>5s} {'steps':>6s} {'phi':>6s} {'code':6s} {'runs':>4s} "
          f"{'absorbed by T':>15s} {'absorbed at (log grid)':>22s} {'<f_a> over [T/2,T]':>17s} " + " ".join(f"{'f_a(' + str(k) + ')':>17s}" for k in at)
          + f" {'CPU s':>6s}")
    for key in sorted(groups):
        scheme, n, kick, steps, phi = key
        for code in sorted(groups[key]):
            g = groups[key][code]
            k = len(g)
            # sips sees absorption at the first checked step after it: map mpisim's exact step to the
            # same grid, so both columns measure the same event
            absorbed = [seen_absorbed(r["absorbed_step"], r["log_every"]) for r in g
                        if r["absorbed_step"] is not None and r["absorbed_step"] <= steps]
            p = len(absorbed) / k
            perr = np.sqrt(max(p * (1 - p), 1.0 / k) / k)    # binomial; floored at 1/k so 0 and 1 get a size
            t_abs = (f"{np.mean(absorbed):8.0f} +- {_sem(absorbed):6.0f}" if len(absorbed) == k
                     else f"{'(' + str(k - len(absorbed)) + ' active)':>22s}")
            cols = []
            # steady activity: each run's f_a averaged over its logged steps in [T/2, T] (0 once absorbed)
            late = []
            for r in g:
                grid = range(steps // 2, steps + 1, r["log_every"])
                late.append(np.mean([activity_at(r, k) or 0.0 for k in grid]))
            cols.append(f"{np.mean(late):.4f} +- {_sem(late):.4f}")
            for step in at:
                v = [x for x in (activity_at(r, step) for r in g) if x is not None]
                cols.append(f"{np.mean(v):.4f} +- {_sem(v):.4f}" if len(v) == k else f"{'-':>17s}")
            print(f"{scheme:16s} {n:5d} {kick:5g} {steps:6d} {phi:6.3f} {code:6s} {k:4d} "
                  f"{len(absorbed):3d} ({p:.2f}+-{perr:.2f}) {t_abs:>22s} " + " ".join(f"{c:>17s}" for c in cols)
                  + f" {sum(r['cpu_seconds'] for r in g):6.0f}")


def active_counts(r):
    """(steps, number of active particles) of one run's logged series."""
    return np.asarray(r["step"]), np.rint(np.asarray(r["activity"]) * r["n"]).astype(np.int64)


def cmd_compare(a):
    """Per (scheme, N, phi, eps): the absorption steps of the two codes over the seeds both ran (mean,
    standard error, sd, median; two-sample Kolmogorov-Smirnov and Mann-Whitney p), f_a(k) of both with the
    difference in standard errors, and, for runs logged every step, the number of active particles at the
    last step before absorption and the steps from the first f_a <= m/N to absorption."""
    from scipy import stats
    rows = []
    for path in a.runs:
        with open(path) as f:
            rows += [json.loads(line) for line in f]
    groups = {}
    for r in rows:
        key = (r["scheme"], r["n"], r["phi"], r["kick"], r["dim"])
        groups.setdefault(key, {}).setdefault(r["code"], {})[r["seed"]] = r
    at = [int(k) for k in a.at.split(",")] if a.at else []
    for key in sorted(groups):
        g = groups[key]
        seeds = sorted(set(g.get("mpisim", {})) & set(g.get("sips", {})))
        runs = {code: [g[code][s] for s in seeds] for code in ("mpisim", "sips")}
        if not seeds or any(r["absorbed_step"] is None for rs in runs.values() for r in rs):
            print(f"{key}: {len(seeds)} seeds with both codes; not every run absorbed: no comparison")
            continue
        grid = max(r["log_every"] for rs in runs.values() for r in rs)
        t = {code: np.array([seen_absorbed(r["absorbed_step"], grid) for r in rs], dtype=float)
             for code, rs in runs.items()}
        cpu = sum(r["cpu_seconds"] for rs in runs.values() for r in rs)
        print(f"{key[0]} N={key[1]} phi={key[2]} eps={key[3]} d={key[4]}: {len(seeds)} seeds, absorption "
              f"steps on a grid of {grid}, {cpu:.0f} CPU s")
        for code, x in t.items():
            print(f"  {code:6s} absorbed at {x.mean():7.0f} +- {_sem(x):4.0f} (sd {np.std(x, ddof=1):5.0f}, "
                  f"median {np.median(x):6.0f})")
        print(f"  ratio of means {t['mpisim'].mean() / t['sips'].mean():.3f}; KS p = "
              f"{stats.ks_2samp(t['mpisim'], t['sips']).pvalue:.3g}, Mann-Whitney p = "
              f"{stats.mannwhitneyu(t['mpisim'], t['sips']).pvalue:.3g}")
        for k in at:
            v = {code: [activity_at(r, k) for r in rs] for code, rs in runs.items()}
            if any(x is None for vs in v.values() for x in vs):
                continue
            m, s = np.mean(v["mpisim"]), np.mean(v["sips"])
            err = np.hypot(_sem(v["mpisim"]), _sem(v["sips"]))
            print(f"  f_a({k}): mpisim {m:.4f} +- {_sem(v['mpisim']):.4f}, sips {s:.4f} +- {_sem(v['sips']):.4f}, "
                  f"difference {(m - s) / err:+.1f} errors")
        if all(r["log_every"] == 1 for rs in runs.values() for r in rs):
            for code, rs in runs.items():
                last, tail = [], {m: [] for m in (2, 5, 10, 20, 50, 100)}
                for r in rs:
                    st, act = active_counts(r)
                    before = act[st < r["absorbed_step"]]
                    last.append(int(before[-1]) if len(before) else 0)
                    for m in tail:
                        tail[m].append(r["absorbed_step"] - int(st[np.argmax(act <= m)]))
                values, counts = np.unique(last, return_counts=True)
                print(f"  {code:6s} active particles at the last step before absorption: "
                      + ", ".join(f"{v}: {c}" for v, c in zip(values, counts)))
                print(f"  {code:6s} steps from the first f_a <= m/N to absorption: " + ", ".join(
                    f"m = {m}: {np.mean(x):.0f} +- {_sem(x):.0f}" for m, x in tail.items()))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    def setup(sp):
        sp.add_argument("--sips", default=None, help="sips build directory (default: $SIPS_BUILD)")
        sp.add_argument("--scheme", default="bro-pairwise", choices=sorted(SIPS_CLASSES))
        sp.add_argument("--n", default="1e5")
        sp.add_argument("--phi", default="0.6")
        sp.add_argument("--dim", type=int, default=3, choices=(2, 3, 4))
        sp.add_argument("--kick", type=float, default=0.05, help="eps in diameters (sips kick = eps * 2R)")
        sp.add_argument("--steps", type=int, default=100)
        sp.add_argument("--seed", type=int, default=1, help="mpisim's initial-position seed")
        return sp
    t = setup(sub.add_parser("time", help="time sips steps"))
    b = setup(sub.add_parser("bench", help="mpisim and sips alternating"))
    b.add_argument("--repeat", type=int, default=3)
    b.add_argument("--out", default=os.path.join(HERE, "..", "bench-out", "sips.jsonl"))
    s = setup(sub.add_parser("activity", help="activity runs in both codes from the same starts"))
    s.add_argument("--out", required=True)
    s.add_argument("--seeds", default="1-8")
    s.add_argument("--log-every", type=int, default=100)
    s.add_argument("--codes", default="mpisim,sips")
    m = sub.add_parser("summary", help="absorbed fraction and f_a per (code, N, phi)")
    m.add_argument("runs")
    m.add_argument("--at", default="", help="also f_a at these steps (comma-separated; logged steps)")
    c = sub.add_parser("compare", help="absorption times and f_a(k) of the two codes over common seeds")
    c.add_argument("runs", nargs="+", help="JSON-lines files of `activity` (pooled)")
    c.add_argument("--at", default="", help="f_a at these steps (comma-separated; logged steps)")
    a = p.parse_args()
    if a.cmd in ("summary", "compare"):
        return {"summary": cmd_summary, "compare": cmd_compare}[a.cmd](a)
    a.sips = sips_path(a.sips)
    if a.sips is None:
        print("sips_reference: skipped: no sips build given (--sips PATH or SIPS_BUILD=PATH; "
              "how to build it: docs/reference-sips.md section 2)", file=sys.stderr)
        return 0
    if a.cmd in ("time", "bench"):
        a.n, a.phi = float(a.n), float(a.phi)
    {"time": cmd_time, "bench": cmd_bench, "activity": cmd_activity}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
