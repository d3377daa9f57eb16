"""Scheme search (the paper's Section 3.2, which its code does not ship), on the gains measured by the
contribution analysis (scheme/contributions.py).

The gains are assumed to add up (as the paper does): the scheme with the largest summed gain whose
exact device memory (memory plan + trained copies) fits the budget. Exhaustive when the space is
small, else an evolutionary search.
"""
import itertools
from dataclasses import dataclass
from typing import List

import numpy as np

from host_tools.errors import UserError
from host_tools.scheme.contributions import Contributions, Simulator
from host_tools.scheme.schemes import ModelSchemes, Scheme

EXHAUSTIVE_LIMIT = 20000


@dataclass
class Result:
    scheme: Scheme
    gain: float
    memory: dict
    evaluated: int
    method: str


def check_fits(schemes: ModelSchemes, budget: int, classifier: bool):
    """A clear error when not even the smallest scheme fits the budget."""
    smallest = Scheme.make(0, classifier=classifier)
    need = schemes.memory(smallest)["workspace"]
    if need > budget:
        what = "training the classifier alone" if classifier else "the model with nothing trained"
        raise UserError(f"no scheme fits in {budget} bytes: {what} already needs {need} bytes of device RAM")


def search(contrib: Contributions, schemes: ModelSchemes, budget: int, seed=0) -> Result:
    """The scheme of largest summed gain with workspace <= budget (ties: the smaller one)."""
    fits = lambda s: schemes.memory(s)["workspace"] <= budget           # noqa: E731
    check_fits(schemes, budget, contrib.classifier)
    # a layer enters the search only at the ratios that helped
    options = {}
    for (i, r) in contrib.weight_acc:
        if contrib.weight_gain(i, r) > 0:
            options.setdefault(i, [0.0]).append(r)
    layers = sorted(options)
    ks = [k for k in range(len(contrib.bias_acc)) if k == 0 or contrib.bias_gain(k) > 0]

    def score(s):
        return (contrib.predicted(s), -schemes.memory(s)["workspace"]) if fits(s) else None

    size = len(ks) * int(np.prod([len(options[i]) for i in layers]))
    if size <= EXHAUSTIVE_LIMIT:
        best, best_score, n = None, None, 0
        for k in ks:
            for combo in itertools.product(*(options[i] for i in layers)):
                s = Scheme.make(k, dict(zip(layers, combo)), contrib.classifier)
                v, n = score(s), n + 1
                if v is not None and (best_score is None or v > best_score):
                    best, best_score = s, v
        method = "exhaustive"
    else:
        best, n = _evolve(ks, layers, options, contrib.classifier, score, seed)
        method = "evolutionary"
    return Result(best, contrib.predicted(best), schemes.memory(best), n, method)


def _evolve(ks, layers, options, classifier, score, seed, population=64, generations=80,
            parents=16, p_mutate=0.3):
    """Evolutionary search over (k, one ratio per layer): mutation and uniform crossover of the
    fittest, infeasible genomes dropped. Seeded with every bias-only and single-layer scheme."""
    rng = np.random.default_rng(seed)
    def scheme(gen):                                                    # noqa: E306
        return Scheme.make(gen[0], {i: r for i, r in zip(layers, gen[1:]) if r}, classifier)

    seeds = [(k,) + (0.0,) * len(layers) for k in ks]
    for j, i in enumerate(layers):
        for r in options[i][1:]:
            for k in ks:
                gen = [k] + [0.0] * len(layers)
                gen[1 + j] = r
                seeds.append(tuple(gen))
    evaluated = {}

    def fitness(gen):
        if gen not in evaluated:
            evaluated[gen] = score(scheme(gen))
        return evaluated[gen]

    pool = [gen for gen in seeds if fitness(gen) is not None]
    choices = [ks] + [options[i] for i in layers]
    for _ in range(generations):
        pool = sorted(set(pool), key=fitness, reverse=True)[:parents]
        children, attempts = [], 0
        while len(children) < population and attempts < 20 * population:
            attempts += 1
            a, b = (pool[rng.integers(len(pool))] for _ in range(2))
            child = [a[j] if rng.random() < 0.5 else b[j] for j in range(len(a))]
            for j, opts in enumerate(choices):
                if rng.random() < p_mutate:
                    child[j] = opts[rng.integers(len(opts))]
            child = tuple(child)
            if fitness(child) is not None:
                children.append(child)
        pool += children
    best = max(pool, key=fitness)
    return scheme(best), len(evaluated)


def frontier(contrib: Contributions, schemes: ModelSchemes, budgets, seed=0) -> List[Result]:
    """The best scheme at each budget (those where one fits)."""
    out = []
    for b in budgets:
        try:
            out.append(search(contrib, schemes, int(b), seed))
        except UserError:
            pass
    return out


def verify(sim: Simulator, contrib: Contributions, schemes: ModelSchemes, budget: int, n: int, seed=0):
    """Gains do not add up exactly: simulate the additive choice and the best schemes of n smaller
    budgets, and with them every scheme the analysis already simulated that fits (free: cached),
    and keep the best measured one (ties: the smaller). Returns (Result, measured accuracy,
    [(Result, accuracy)] of every candidate)."""
    lo = schemes.memory(Scheme.make(0, classifier=contrib.classifier))["workspace"]
    results = frontier(contrib, schemes, np.linspace(lo, budget, max(n, 1) + 1)[1:], seed)
    for s in sim.simulated:
        if s.classifier == contrib.classifier and schemes.memory(s)["workspace"] <= budget:
            results.append(Result(s, contrib.predicted(s), schemes.memory(s), 1, "analysis"))
    seen, scored = set(), []
    for r in results:
        if r.scheme not in seen:
            seen.add(r.scheme)
            scored.append((r, sim.accuracy(r.scheme)))
    best = max(scored, key=lambda ra: (ra[1], -ra[0].memory["workspace"]))
    return best[0], best[1], scored
