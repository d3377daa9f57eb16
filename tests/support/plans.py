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
