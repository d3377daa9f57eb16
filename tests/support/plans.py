"""Memory plans of one graph with a planner switch as it is and turned to another value."""
from host_tools.memory import arena
from host_tools.model import mct_format


def plans_with_and_without(graph, switch, other):
    """(plan as the graph is, plan with graph.<switch> = other): whole tensors (no patch stage), the
    graph's own trained tensors. The switch is set back (or left unset) afterwards."""
    trained = mct_format.trained_params(graph)
    before = graph.__dict__.get(switch, _UNSET)
    as_is = arena.make_plan(graph, trained, None)
    setattr(graph, switch, other)
    try:
        return as_is, arena.make_plan(graph, trained, None)
    finally:
        if before is _UNSET:
            delattr(graph, switch)
        else:
            setattr(graph, switch, before)


_UNSET = object()


def count_smaller_arenas(graphs, switch, train):
    """For each (rng, graph): the plan as the graph is is no larger than with graph.<switch> off, and
    the C core, trained by train(data, model, rng) -> CoreModel, writes within that plan's arena (its
    measured peak). Returns how many plans were strictly smaller."""
    smaller = 0
    for rng, graph in graphs:
        as_is, off = plans_with_and_without(graph, switch, False)
        assert as_is.arena_size <= off.arena_size
        smaller += as_is.arena_size < off.arena_size
        data = mct_format.to_bytes(graph)
        m = mct_format.load(data)
        mem = train(data, m, rng).mem()
        assert mem["arena_peak"] <= mem["arena"] == m.arena_size
    return smaller
