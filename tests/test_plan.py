"""host_tools plan: the scheme rewrite, the simulation (C core vs numpy reference), the search, and
the written file's memory on the host's memory plan, the C core and the unix port."""
import itertools

import numpy as np
import pytest

from host_tools.boards import runners as boards
from host_tools.cli.main import main as host_tools_main
from host_tools.model import mct_format
from host_tools.reference import oracle as reference
from host_tools.model import graph as g
from host_tools.scheme import contributions, search as ss
from host_tools.ccore.core import CoreModel
from host_tools.cli.plan import parse_budget
from host_tools.scheme.schemes import RATIOS, ModelSchemes, Scheme, current_scheme
from tests.support.graphgen import _conv, random_graph


def tiny_graph(seed=0, classes=3):
    """conv 3x3 -> depthwise 3x3 -> 1x1 conv -> global pool -> fc, on 1x8x8 images."""
    rng = np.random.default_rng(seed)
    c1, s1, ys1, yz1 = _conv(rng, "c1", "x", "a1", 1, 8, 8, 4, 3, 1, 1, 1, 1 / 255, -128, True)
    c2, s2, ys2, yz2 = _conv(rng, "c2", "a1", "a2", 4, 8, 8, 4, 3, 1, 1, 4, ys1, yz1, True)
    c3, s3, ys3, yz3 = _conv(rng, "c3", "a2", "a3", 4, 8, 8, 8, 1, 1, 0, 1, ys2, yz2, True)
    pool = g.GlobalAvgPool("pool", "a3", "p", ys3, yz3)
    ws = rng.uniform(0.005, 0.03, size=classes).astype(np.float32)
    fc = g.FullyConnected("fc", "p", "logits", rng.integers(-127, 128, size=(classes, 8)).astype(np.int8),
                          rng.integers(-500, 500, size=classes).astype(np.int32), ws, ys3, yz3,
                          float(ys3 * 0.02 * 128 * np.sqrt(8) * 0.3), 0)
    shapes = {"x": (1, 8, 8), "a1": s1, "a2": s2, "a3": s3, "p": (8, 1, 1), "logits": (classes, 1, 1)}
    return g.Graph("x", "logits", shapes, [c1, c2, c3, pool, fc], 1 / 255, -128, 0, True)


def tiny_data(n=60, classes=3, seed=1):
    """Images whose label is the brightest third of the image (something to learn)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, size=n)
    x = rng.uniform(0, 0.5, size=(n, 1, 8, 8)).astype(np.float32)
    for i, c in enumerate(y):
        x[i, 0, :, c * 8 // classes:(c + 1) * 8 // classes] += 0.5
    return x, y


SCHEMES = [Scheme.make(0), Scheme.make(2), Scheme.make(1, {2: 0.5}), Scheme.make(3, {0: 1.0, 1: 0.25}),
           Scheme.make(0, {2: 0.125}, classifier=False), Scheme.make(3, {0: 0.5, 1: 1.0, 2: 1.0})]


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: s.describe())
def test_rewritten_file_trains_as_the_converted_one(scheme):
    """A file rewritten for a scheme trains exactly like the converter's file of that scheme, and
    its memory is what ModelSchemes predicts and the C core allocates."""
    gr = tiny_graph()
    schemes = ModelSchemes(mct_format.load(mct_format.to_bytes(gr)))
    data = schemes.rewrite(scheme)
    gr.n_bias_update, gr.weight_update, gr.train_classifier = scheme.n_bias, dict(scheme.weights), scheme.classifier
    direct = mct_format.to_bytes(gr)
    a, b = mct_format.load(data), mct_format.load(direct)
    assert schemes.apply(current_scheme(a)) == schemes.apply(scheme)
    assert a.trained_count == b.trained_count and a.trainable == b.trainable
    assert all(np.array_equal(t, u) for t, u in zip(a.tensors, b.tensors))
    assert CoreModel(data).mem_info() == schemes.memory(scheme)
    x, y = tiny_data(8)
    q = np.clip(np.round(x / gr.input_scale) + gr.input_zero, -128, 127).astype(np.int8).reshape(8, -1)
    ca, cb = CoreModel(data), CoreModel(direct)
    la, lb = ca.train(q, y, np.arange(8), 0.05), cb.train(q, y, np.arange(8), 0.05)
    np.testing.assert_array_equal(la, lb)
    assert mct_format.load(ca.save()).tensors[0].tobytes() == mct_format.load(cb.save()).tensors[0].tobytes()
    assert all(np.array_equal(t, u) for t, u in zip(mct_format.load(ca.save()).tensors,
                                                    mct_format.load(cb.save()).tensors))


def test_rewrite_of_the_files_own_scheme_is_the_same_file():
    gr = tiny_graph()
    gr.n_bias_update, gr.weight_update = 2, {1: 0.5}
    data = mct_format.to_bytes(gr)
    m = mct_format.load(data)
    assert ModelSchemes(m).rewrite(current_scheme(m)) == data


@pytest.mark.parametrize("seed", range(4))
def test_simulation_is_the_reference_training(seed):
    """The C core the scheme search simulates with trains bit for bit as the numpy reference."""
    rng = np.random.default_rng(seed)
    gr = random_graph(rng, classes=4)
    data = mct_format.to_bytes(gr)
    model = mct_format.load(data)
    n = 6
    x = rng.integers(-128, 128, size=(n, int(np.prod(model.input_shape)))).astype(np.int8)
    y = rng.integers(0, 4, size=n)
    order = rng.permutation(n)
    core = CoreModel(data)
    losses = core.train(x, y, order, 0.02)
    ref = reference.Reference(mct_format.load(data))
    want = [ref.train_step(x[j], int(y[j]), 0.02) for j in order]
    np.testing.assert_allclose(losses, want, rtol=1e-6)
    assert core.save() == ref.m.to_bytes()
    assert list(core.predict(x)) == [ref.predict(v) for v in x]


def _fake_contributions(schemes, rng):
    n = schemes.n_convs
    bias = [0.0] + list(rng.uniform(-0.02, 0.05, size=n))
    weights = {(i, r): 0.3 + rng.uniform(-0.05, 0.1) for i in range(n) for r in RATIOS}
    return contributions.Contributions(0.2, [0.3 + b for b in bias], int(np.argmax(bias)), weights, True)


@pytest.mark.parametrize("evolutionary", [False, True])
def test_search_finds_the_best_scheme_that_fits(monkeypatch, evolutionary):
    """Against brute force over every scheme: largest summed gain with memory <= budget."""
    schemes = ModelSchemes(mct_format.load(mct_format.to_bytes(tiny_graph())))
    contrib = _fake_contributions(schemes, np.random.default_rng(3))
    if evolutionary:
        monkeypatch.setattr(ss, "EXHAUSTIVE_LIMIT", 0)
    lo = schemes.memory(Scheme.make(0))["workspace"]
    hi = schemes.memory(Scheme.make(3, {i: 1.0 for i in range(3)}))["workspace"]
    every = [Scheme.make(k, dict(zip(range(3), rs)))
             for k in range(4) for rs in itertools.product((0.0,) + RATIOS, repeat=3)]
    for budget in np.linspace(lo, hi, 5).astype(int):
        res = ss.search(contrib, schemes, int(budget))
        assert res.method == ("evolutionary" if evolutionary else "exhaustive")
        assert res.memory["workspace"] <= budget
        best = max(contrib.predicted(s) for s in every if schemes.memory(s)["workspace"] <= budget)
        assert res.gain == pytest.approx(best)


@pytest.mark.parametrize("text,value", [("128KB", 131072), ("0.5MB", 524288), ("90000", 90000),
                                        ("64 kib", 65536), ("2048b", 2048)])
def test_budget_parsing(text, value):
    assert parse_budget(text) == value


@pytest.mark.parametrize("text", ["abc", "0", "0KB", "12 parsecs", "-5KB", ""])
def test_bad_budget_is_one_sentence(tmp_path, capsys, text):
    model, data = _files(tmp_path)
    assert host_tools_main(["plan", str(model), "--data", str(data), f"--budget={text}", "-o", str(tmp_path / "o.mct")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("host_tools plan: error: --budget") and "\n" not in err and "Traceback" not in err


def test_no_scheme_fits_is_one_sentence(tmp_path, capsys):
    model, data = _files(tmp_path)
    need = ModelSchemes(mct_format.read(model)).memory(Scheme.make(0))["workspace"]
    assert host_tools_main(["plan", str(model), "--data", str(data), "--budget", str(need - 1),
                     "-o", str(tmp_path / "o.mct")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"host_tools plan: error: no scheme fits in {need - 1} bytes: training the classifier "
                   f"alone already needs {need} bytes of device RAM")
    assert not (tmp_path / "o.mct").exists()


def test_data_without_labels(tmp_path, capsys):
    model, _ = _files(tmp_path)
    np.savez(tmp_path / "nolabels.npz", x=tiny_data()[0])
    assert host_tools_main(["plan", str(model), "--data", str(tmp_path / "nolabels.npz"), "--budget", "1MB",
                     "-o", str(tmp_path / "o.mct")]) == 2
    assert "has no labels" in capsys.readouterr().err


def _files(tmp_path):
    (tmp_path / "tiny.mct").write_bytes(mct_format.to_bytes(tiny_graph()))
    x, y = tiny_data()
    np.savez(tmp_path / "data.npz", x=x, y=y)
    return tmp_path / "tiny.mct", tmp_path / "data.npz"


@pytest.fixture(scope="module")
def unix_firmware():
    return boards.build_firmware("unix")


MEM_SCRIPT = """\
import mcutrain
m = mcutrain.Model(open('out.mct', 'rb'))
m.train_step(bytes(64), 0, 0.01)
print('W', m.mem_info()['workspace'])
"""


def test_plan_writes_a_scheme_within_the_budget(tmp_path, capsys, unix_firmware):
    """End to end on a budget between the smallest and the largest scheme: the memory of the written
    file from ModelSchemes.memory, the C core and mem_info() on the unix port is within the budget."""
    model, data = _files(tmp_path)
    schemes = ModelSchemes(mct_format.read(model))
    lo = schemes.memory(Scheme.make(0))["workspace"]
    hi = schemes.memory(Scheme.make(3, {i: 1.0 for i in range(3)}))["workspace"]
    budget = (lo + hi) // 2
    out, png = tmp_path / "out.mct", tmp_path / "frontier.png"
    assert host_tools_main(["plan", str(model), "--data", str(data), "--budget", str(budget), "-o", str(out),
                     "--png", str(png), "--epochs", "1", "--verify", "2"]) == 0
    text = capsys.readouterr().out
    assert "chosen scheme" in text and f"wrote {out}" in text
    written = mct_format.read(out)
    scheme = current_scheme(written)
    mem = ModelSchemes(written).memory(scheme)["workspace"]
    assert mem <= budget
    assert CoreModel(out.read_bytes()).mem()["workspace"] == mem
    assert "plan" in written.meta
    from PIL import Image
    assert Image.open(png).size[0] > 100
    (tmp_path / "mem.py").write_text(MEM_SCRIPT)
    res = boards.run_script("unix", tmp_path / "mem.py", [out], timeout=60, firmware=unix_firmware)
    assert res.returncode == 0, res.output
    got = int(res.output.split("W ")[1].split()[0])
    assert got == mem <= budget


def test_channel_reordering_keeps_the_outputs():
    """The reordered model (largest-magnitude channels first) computes exactly what the original does;
    convs whose output meets an add, or grouped convs, are refused."""
    from host_tools.model import channel_order
    rng = np.random.default_rng(5)
    gr = tiny_graph()
    data = mct_format.to_bytes(gr)
    m = mct_format.load(data)
    x = rng.integers(-128, 128, size=(20, 64)).astype(np.int8)
    ref = reference.Reference(mct_format.load(data))
    want = [ref.forward(v) for v in x]
    for k in (0, 2):                                   # conv -> depthwise -> conv, conv -> pool -> fc
        perm = channel_order.magnitude_order(m, k)
        assert list(perm) != sorted(perm)
        out = channel_order.reorder(data, k, perm)
        got = reference.Reference(mct_format.load(out))
        assert all(np.array_equal(got.forward(v), w) for v, w in zip(x, want))
        w = np.abs(mct_format.load(out).tensors[m.ops[k].weight].reshape(len(perm), -1).astype(float)).sum(1)
        w *= mct_format.load(out).tensors[m.ops[k].wscale]
        assert np.all(np.diff(w) <= 0)                  # now the largest first
    assert channel_order.reorder(data, 1, [1, 0, 2, 3]) is None      # depthwise


@pytest.mark.parametrize("seed", range(6))
def test_scheme_memory_is_the_c_cores_workspace(seed):
    """On random graphs (adds, pools, grouped convs) and random schemes."""
    rng = np.random.default_rng(100 + seed)
    gr = random_graph(rng)
    schemes = ModelSchemes(mct_format.load(mct_format.to_bytes(gr)))
    for _ in range(4):
        n = schemes.n_convs
        s = Scheme.make(int(rng.integers(0, n + 1)),
                        {i: float(rng.choice(RATIOS)) for i in range(n) if rng.random() < 0.4},
                        classifier=bool(rng.random() < 0.8))
        if not (s.classifier or s.n_bias or s.weights):
            continue
        data = schemes.rewrite(s)
        back = current_scheme(mct_format.load(data))        # 1/8 and 1/4 of 4 channels are both 1
        assert schemes.apply(back) == schemes.apply(s)
        assert CoreModel(data).mem_info() == schemes.memory(s)


def test_verification_keeps_a_scheme_at_least_as_good_as_the_additive_one():
    gr = tiny_graph()
    schemes = ModelSchemes(mct_format.load(mct_format.to_bytes(gr)))
    x, y = tiny_data(80)
    q = np.clip(np.round(x / gr.input_scale) + gr.input_zero, -128, 127).astype(np.int8).reshape(len(x), -1)
    sim = contributions.Simulator(schemes, *contributions.split(q, y, 0.3, 0, 0), epochs=1, lr=0.05)
    contrib = contributions.analyse(sim, [0, 1, 2], RATIOS, 3)
    assert len(contrib.bias_acc) == 4 and len(contrib.weight_acc) == 12
    budget = (schemes.memory(Scheme.make(0))["workspace"] +
              schemes.memory(Scheme.make(3, {i: 1.0 for i in range(3)}))["workspace"]) // 2
    additive = ss.search(contrib, schemes, budget)
    best, acc, scored = ss.verify(sim, contrib, schemes, budget, 3)
    assert best.memory["workspace"] <= budget and all(r.memory["workspace"] <= budget for r, _ in scored)
    assert additive.scheme in [r.scheme for r, _ in scored]
    assert acc == sim.accuracy(best.scheme) >= sim.accuracy(additive.scheme)


@pytest.mark.parametrize("rule", ["master", "frac8", "stochastic", "nearest"])
def test_rewrite_keeps_the_update_rule_and_plans_the_patch_stage(rule):
    """Files with the other update rules (their trained copies differ) and with a patch-based first
    stage (chosen per scheme, as convert's --patch auto does): the file's own scheme rewrites to the
    same bytes, other schemes to the memory the C core allocates."""
    rng = np.random.default_rng(7)
    staged = 0
    for _ in range(4):
        gr = random_graph(rng, size=int(rng.integers(16, 28)), weights=False, n_bias_update=1)
        gr.update_rule = rule
        data = mct_format.to_bytes(gr)
        m = mct_format.load(data)
        staged += m.stage is not None
        schemes = ModelSchemes(m)
        assert schemes.rewrite(current_scheme(m)) == data
        for s in (Scheme.make(0), Scheme.make(schemes.n_convs, {0: 0.5})):
            out = schemes.rewrite(s)
            assert CoreModel(out).mem_info() == schemes.memory(s)
            assert mct_format.load(out).train_flags == m.train_flags
    assert staged, "no random graph got a patch-based stage"


@pytest.mark.parametrize("backward,buffer", [("int", "caller"), ("float", "model"), ("float", "rows")])
def test_rewrite_keeps_the_backward_and_the_input_buffer(backward, buffer):
    """A file converted with the integer backward rewrites without fused blocks (which only the
    float32 backward has), and one converted with --input-buffer model keeps its input at the
    arena's first byte (Model.input_buffer()): the C core loads each rewrite with the memory the
    ModelSchemes says."""
    from tests.support.graphgen import random_block_graph
    for seed in range(6):
        gr = random_block_graph(np.random.default_rng(seed), n_blocks=2, size=12)
        gr.update_rule, gr.backward, gr.input_buffer = "stochastic", backward, buffer
        if buffer == "rows" and 0 in mct_format.trained_params(gr):
            continue            # the input fed row by row needs a frozen first layer
        data = mct_format.to_bytes(gr)
        m = mct_format.load(data)
        schemes = ModelSchemes(m)
        every = Scheme.make(schemes.n_convs, {i: 1.0 for i in range(schemes.n_convs)})
        if buffer == "rows":
            # training every layer leaves no frozen first stage to read the input row by row
            assert schemes.memory(every)["workspace"] == float("inf")
            every = Scheme.make(schemes.n_convs - 1, {i: 1.0 for i in range(1, schemes.n_convs)})
        for s in (current_scheme(m), every, Scheme.make(1)):
            out = schemes.rewrite(s)
            assert CoreModel(out).mem_info() == schemes.memory(s)
            if buffer == "model":
                assert mct_format.load(out).acts[m.input][3] == 0
            if buffer == "rows":
                assert 0 < mct_format.load(out).act_capacity[m.input] < int(np.prod(m.input_shape))
