"""Smoke test of `make bench-accuracy` and `make bench-speed` at tiny sizes: the reports have their
structure, the fp32 baseline is the same model as the int8 one, and the C core simulation gives the
same training steps as the unix port (and the emulated board where its firmware is built)."""
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import bench_accuracy  # noqa: E402
import bench_speed  # noqa: E402
import benchlib  # noqa: E402
from host_tools.boards import runners as boards  # noqa: E402


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    from host_tools.datasets import load_fashion_mnist
    try:
        load_fashion_mnist("test")
    except Exception as e:  # noqa: BLE001 - the reader's error names the Debian package
        pytest.skip(f"Fashion-MNIST is not installed: {e}")
    out = tmp_path_factory.mktemp("demo")
    subprocess.run([sys.executable, str(ROOT / "examples/pretrain_fashion.py"), str(out), "--epochs", "1",
                    "--n-train", "10", "--n-test", "10", "--ft-epochs", "0"],
                   check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return out


def _unix_or_skip():
    if not boards.firmware_path("unix").exists():
        pytest.skip("no unix-port firmware: make firmware BOARD=unix")


def test_write_section_replaces_only_its_own(tmp_path):
    doc = tmp_path / "b.md"
    doc.write_text("# B\n\n<!-- other -->\nkeep me\n<!-- other -->\n")
    benchlib.write_section("<!-- mine -->", "first", doc)
    benchlib.write_section("<!-- mine -->", "second", doc)
    text = doc.read_text()
    assert "keep me" in text and "second" in text and "first" not in text
    assert text.count("<!-- mine -->") == 2


def test_lr_schedule_warms_up_and_decays():
    lrs = benchlib.lr_schedule(100, 0.1)
    assert lrs.dtype == np.float32 and len(lrs) == 100
    assert lrs[0] < lrs[4] and abs(lrs[4] - 0.1) < 1e-7 and lrs[-1] < 1e-3 and np.all(np.diff(lrs[5:]) <= 0)


def test_float_net_is_the_int8_model(demo_dir, tmp_path):
    """The fp32 baseline computes the same function as the int8 model (to its quantization error) and
    trains exactly the device's tensors in 'scheme' mode."""
    import torch
    mct = tmp_path / "m.mct"
    benchlib.convert(["examples/fashion_net.py:FashionNet", "--weights", demo_dir / "fashion_net.pt", "--calib",
                      demo_dir / "calib.npz", "--n-bias-update", "2", "--weight-update", "10:0.5"], mct)
    model = benchlib.mct_format.read(mct)
    x, _ = benchlib.fashion_int8("test", np.arange(200), 28, 1)
    with torch.no_grad():
        fp = benchlib.float_net(model, "none")(x).argmax(1).numpy()
    core = benchlib.core_model(model.data)
    ip = np.array([np.argmax(core.forward(xi, 10)) for xi in x])
    assert np.mean(fp == ip) >= 0.9
    net = benchlib.float_net(model, "scheme")
    trained = [p.requires_grad for p in net.weights] + [p.requires_grad for p in net.biases]
    # 11 convs + classifier: weights of conv 10 (half its rows) and the classifier; biases of convs 9, 10
    # and the classifier
    assert trained == [False] * 10 + [True, True] + [False] * 9 + [True, True, True]
    loss = torch.nn.functional.cross_entropy(net(x[:1]), torch.tensor([3]))
    loss.backward()
    g = net.weights[10].grad
    assert g[: g.shape[0] // 2].abs().sum() > 0 and g[g.shape[0] // 2:].abs().sum() == 0


def test_accuracy_quick(demo_dir, tmp_path):
    _unix_or_skip()
    board_list = ["unix"] + (["qemu-m3"] if boards.firmware_path("qemu-m3").exists() else [])
    docs, img, out = tmp_path / "bench.md", tmp_path / "img", tmp_path / "results"
    assert bench_accuracy.main(["--quick", "--tasks", "demo", "--seeds", "2", "--boards", ",".join(board_list),
                                "--demo-dir", str(demo_dir), "--docs", str(docs), "--img-dir", str(img),
                                "--results", str(out)]) == 0
    res = json.loads((out / "demo.json").read_text())
    rows = res["results"]
    run_keys = {s.key for s in bench_accuracy.SETTINGS if not s.needs or benchlib.convert_has_flag(s.needs)}
    assert set(rows) == run_keys
    for key, runs in rows.items():
        assert [r["seed"] for r in runs] == [0, 1]
        for r in runs:
            steps = [p[0] for p in r["curve"]]
            assert steps[0] == 0 and steps[-1] == 100 and steps == sorted(steps)
            assert 0 <= r["final"] <= 100 and r["final"] == r["curve"][-1][1]
    # with QAS the int8 engine follows the fp32 model trained on the same scheme; without, it barely moves
    qas = np.mean([r["mean_loss"] for r in rows["int8-qas"]])
    fp32 = np.mean([r["mean_loss"] for r in rows["fp32-sparse"]])
    assert abs(qas - fp32) < 0.2 * fp32
    # every board gave the C core simulation's losses and predictions, bit for bit
    assert set(res["boards"]) == set(board_list)
    assert all(b["equal"] for b in res["boards"].values())
    text = docs.read_text()
    assert text.count(bench_accuracy.MARK) == 2
    for s in bench_accuracy.SETTINGS:
        assert s.label in text
    assert (img / "accuracy-demo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_speed_quick(demo_dir, tmp_path):
    _unix_or_skip()
    docs = tmp_path / "bench.md"
    m3 = boards.firmware_path("qemu-m3").exists()
    assert bench_speed.main(["--quick", "--demo-dir", str(demo_dir), "--docs", str(docs),
                             "--boards", "qemu-m3" if m3 else ""]) == 0
    text = docs.read_text()
    assert text.count(bench_speed.MARK) == 2
    row = next(ln for ln in text.splitlines() if ln.startswith("| (b) FashionNet"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert float(cells[2]) > 0 and float(cells[3]) > 0 and cells[5].endswith("x") and float(cells[6]) > 0
    assert cells[7].endswith("MiB") and cells[10].endswith("x")
    if m3:
        assert any(ln.startswith("| demo | qemu-m3 |") and "," in ln for ln in text.splitlines())
