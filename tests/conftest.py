import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MIT_DIR = ROOT.parent / "shared" / "models" / "mit"


@pytest.fixture(scope="session")
def mit_dir():
    if not (MIT_DIR / "mbv2-w0.35" / "model.json").exists():
        pytest.skip(f"the MIT models are not here ({MIT_DIR}): a fresh clone has no ../shared")
    return MIT_DIR


def pytest_runtest_setup(item):
    """A test of a board that cannot run here (CircuitPython's snapshot absent; Node, rp2040js or the
    Pico firmware missing) skips, saying why, before its fixtures build the firmware."""
    params = item.callspec.params.values() if hasattr(item, "callspec") else ()
    from host_tools.boards import runners as boards
    for board in params:
        if isinstance(board, str) and board in boards.BOARDS and boards.unavailable(board):
            pytest.skip(boards.unavailable(board))
