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
