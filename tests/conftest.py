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


@pytest.fixture(autouse=True)
def _emulated_pico_available(request):
    """Tests on the rp2-pico board (the real firmware in rp2040js) skip, saying why, where Node,
    rp2040js (make rp2040js) or the firmware (make firmware BOARD=rp2-pico) are missing."""
    callspec = getattr(request.node, "callspec", None)
    if callspec and "rp2-pico" in callspec.params.values():
        from host_tools.boards import rp2040js
        reason = rp2040js.missing()
        if reason:
            pytest.skip(f"the emulated Pico cannot run: {reason}")
