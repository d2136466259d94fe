"""What the validation studies share: a run that ends with a few configurations for averaging."""


def run_and_sample(sim, steps, frames, every):
    """Run ``sim`` (a :class:`mpisim.simulation.Simulation` at step 0) for ``steps`` steps in all and return
    the positions (N, d) of ``frames`` configurations ``every`` steps apart, the last one at the end (global,
    on every rank). A run that stops when absorbed returns its absorbing configuration repeated."""
    sim.run(steps=steps - (frames - 1) * every)
    snaps = [sim.snapshot()[1]]
    for _ in range(frames - 1):
        sim.run(steps=every)
        snaps.append(sim.snapshot()[1])
    return snaps
