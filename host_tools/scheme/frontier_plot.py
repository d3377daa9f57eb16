"""The memory/gain frontier of a scheme search as a PNG (matplotlib, in the style of bench-accuracy's
learning curves)."""
import os

from host_tools.atomic import atomic_path
from host_tools.errors import UserError


def draw(path, points, chosen, budget, title="", measured=()):
    """points: [(memory bytes, gain %)] of the best scheme at each budget; chosen: one such point;
    measured: [(memory bytes, gain %)] simulated gains of the verified schemes (red crosses)."""
    try:
        import matplotlib
    except ImportError:
        raise UserError("drawing the frontier (--png) needs matplotlib: pip install matplotlib") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    kb = 1 / 1024
    pts = sorted(points)
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    # a step: a budget's best gain holds until the next scheme fits
    ax.step([m * kb for m, _ in pts], [g for _, g in pts], where="post", marker="o", ms=3,
            label="best scheme per budget (predicted)")
    if measured:
        ax.plot([m * kb for m, _ in measured], [g for _, g in measured], "x", color="tab:red", ms=7,
                label="verified schemes (simulated)")
    ax.plot([chosen[0] * kb], [chosen[1]], "o", ms=10, mfc="none", mec="tab:red", mew=2, label="chosen")
    ax.axvline(budget * kb, color="tab:red", lw=1, ls="--", label="budget")
    ax.set_xlabel("device memory (workspace, KB)")
    ax.set_ylabel("accuracy gain over the classifier alone (points)")
    if title:
        ax.set_title(title, fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    with atomic_path(path, os.path.splitext(str(path))[1]) as tmp:    # the format follows the name
        fig.savefig(tmp)
    plt.close(fig)
