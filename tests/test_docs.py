"""Every command block of README.md, docs/*.md and boards/README.md, as written.

The blocks are read from the markdown files (fenced, and boards/README.md's indented ones). Each
is listed in BLOCKS by its file and first line, with how it is checked:
- run: executed as written on the emulated boards (qemu-m3) through the CLI or the REPL, with
  substitutions only where a block names a path the test provides: `build/demo/` is a small demo
  (FashionNet with random weights, a few dozen images), `--port /dev/ttyACM0` the pty of an
  emulated board (`--emulate qemu-m3 --flash FILE`, as docs/host_tools.md says);
- parse: each command is valid as written (host_tools lines through the CLI's own parser, make
  lines with `make -n`, Python with compile()), because running it takes minutes (the reason is
  given; the same command runs elsewhere with small bounds) or needs hardware;
- output: not a command (what a command prints), nothing to run;
- elsewhere: lines for another project's tree (a CircuitPython port's makefiles), with placeholders.
A block that is not in BLOCKS fails the test: a new block needs its check.
"""
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from host_tools.boards import runners as boards
from host_tools.cli.main import build_parser
from tests.support.repl_driver import Terminal

ROOT = boards.REPO
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "boards" / "README.md"]


def blocks(path):
    """[(first line, text)] of the code blocks of a markdown file: fenced ones (their indentation
    removed) and indented ones (4 spaces, after a blank line); a block is known by its first line."""
    lines = path.read_text().splitlines()
    out, i = [], 0
    while i < len(lines):
        m = re.match(r"^( *)```", lines[i])
        if m:
            indent, body = len(m.group(1)), []
            i += 1
            while not lines[i].strip().startswith("```"):
                body.append(lines[i][indent:])
                i += 1
            out.append(body)
        elif lines[i].startswith("    ") and i > 0 and not lines[i - 1].strip() and lines[i].strip():
            body = []
            while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
                body.append(lines[i][4:])
                i += 1
            out.append(body)
            continue
        i += 1
    keyed, seen = [], {}
    for b in out:
        first = b[0].strip()
        seen[first] = seen.get(first, 0) + 1
        # a second block with the same first line is told apart by its number
        keyed.append((first if seen[first] == 1 else f"{first} [{seen[first]}]", "\n".join(b).strip("\n") + "\n"))
    return keyed


# (file, first line) -> (how, why / what)
BLOCKS = {
    ("README.md", "make demo    # installs what is missing, builds, converts, trains on the emulated 256 KB board"):
        ("parse", "make demo pretrains for minutes and make test is the whole suite; test_example runs the "
                  "demo's script, test_end_to_end the demo pipeline on small data"),
    ("README.md", ">>> import mcutrain"): ("run", "typed into `host_tools repl --board qemu-m3`"),
    ("README.md", "PyTorch model (file.py:Class + state_dict)"): ("output", "a diagram of the folders"),
    ("docs/api.md", "import mcutrain"): ("run", "on qemu-m3 with the model in /rom"),
    ("docs/api.md", "layers = m.layers()"): ("run", "on qemu-m3, after defining m, x, label, lr"),
    ("docs/api.md", "import mcutrain [2]"):
        ("run", "tests/test_input_rows.py runs it on qemu-m3, a rows model and its frames in /rom"),
    ("docs/host_tools.md", "host_tools convert examples/fashion_net.py:FashionNet --weights build/demo/fashion_net.pt \\"):
        ("run", ""),
    ("docs/host_tools.md", "host_tools check build/demo/fashion.mct --data build/demo/val.npz --steps 5"): ("run", ""),
    ("docs/host_tools.md", "host_tools run --board qemu-m3 --flash build/demo/flash.img examples/fashion_new_classes.py \\"):
        ("run", ""),
    ("docs/host_tools.md", "host_tools deploy --port /dev/ttyACM0 build/demo/fashion.mct examples/fashion_new_classes.py \\"):
        ("run", "--port /dev/ttyACM0 -> --emulate qemu-m3 --flash FILE"),
    ("docs/host_tools.md", "host_tools export trained.mct --original build/demo/fashion.mct -o trained_state.pt"):
        ("run", "on the model the deploy block fetched"),
    ("docs/host_tools.md", "host_tools plan build/demo/fashion.mct --data target.npz --budget 64KB -o fashion_64kb.mct --png frontier.png"):
        ("parse", "the analysis simulates 56 trainings (minutes); test_cli runs plan with small bounds"),
    ("docs/host_tools.md", "from host_tools.boards import runners as boards"): ("run", "with model.mct, train.py, data.bin"),
    ("boards/README.md", "qemu-m3 SRAM: data+bss 1100 B, GC heap 243712 B, stack 16384 B, total 261200 of 262144 B; Flash: text+data 254596 B; ROMFS: 3145728 B at 0x00100000"):
        ("output", "what make firmware prints"),
    ("boards/README.md", "qemu-m7 SRAM: data+bss 1100 B, GC heap 243712 B, stack 16384 B, total 261200 of 262144 B; Flash: text+data 251012 B; ROMFS: 3145728 B at 0x00100000"):
        ("output", "what make firmware prints"),
    ("boards/README.md", "from host_tools.boards import runners as boards"):
        ("run", "with train.py, model.mct"),
    ("boards/README.md", "make deps                     # apt: gcc-arm-none-eabi, libnewlib-arm-none-eabi, qemu-system-arm, pkg-config, ..."):
        ("parse", "builds (minutes); the test suite builds what it needs with the same targets"),
    ("boards/README.md", "host_tools run --board qemu-m3 train.py model.mct data.bin      # or: .venv/bin/host_tools"):
        ("parse", "generic names; docs/host_tools.md's step 4 runs the same command on real files"),
    ("boards/README.md", "from host_tools.boards import runners as boards [2]"):
        ("parse", "generic names (bench.py); the same calls run in every board test"),
    ("boards/README.md", "f = open(\"model.mct\", \"rb\")"):
        ("parse", "board code, the flagship example reads its files this way"),
    ("boards/README.md", "mpremote cp dist/mpy/armv7m/mcutrain.mpy :mcutrain.mpy     # Cortex-M3 (armv7emsp: M4F/M7; armv6m: M0/M0+, RP2040)"):
        ("parse", "needs make dist and a board with stock firmware; test_natmod installs the .mpy so"),
    ("boards/README.md", "import mcutrain_util"):
        ("parse", "a sketch (`... m.train_step(...) ...`); test_example saves with save_atomic for real"),
    ("boards/README.md", "make firmware BOARD=circuitpython-unix       # -> build/firmware/circuitpython-unix/micropython"):
        ("parse", "generic names (train.py, model.mct); test_board_api and test_reliability run the "
                  "board scripts on circuitpython-unix, test_end_to_end runs check on it"),
    ("boards/README.md", "mkdir -p shared-bindings/mcutrain shared-module/mcutrain"):
        ("elsewhere", "copies into a CircuitPython checkout (<mcutrain> is this repository)"),
    ("boards/README.md", "include $(TOP)/shared-bindings/mcutrain/mcutrain.mk"):
        ("elsewhere", "lines of a CircuitPython port's user_post_circuitpy_defns.mk"),
    ("boards/README.md", "CIRCUITPY_MCUTRAIN = 1"): ("elsewhere", "a line of a CircuitPython board's mpconfigboard.mk"),
    ("docs/fleet.md", "make demo-fleet      # 100 clients, Dirichlet(0.5) non-IID, two of them emulated boards"):
        ("parse", "Ray and 100 clients take many minutes; test_fleet runs 3 clients, one a board, through "
                  "Flower's ClientApp and ServerApp"),
    ("docs/fleet.md", "python -m host_tools.fleet build/demo/fashion.mct --clients 100 --rounds 10 --boards unix,qemu-m3"):
        ("parse", "the simulation of make demo-fleet (minutes)"),
    ("docs/fleet.md", "python -m host_tools.fleet.deployment build/demo/fashion.mct --clients 4 --rounds 3 --boards unix,qemu-m3"):
        ("parse", "starts a SuperLink and SuperNodes (minutes); test_fleet runs the apps in process"),
    ("docs/fleet.md", "# the server's machine"):
        ("parse", "Flower's own commands, on several machines; their --help must list the options used"),
    ("docs/host_tools.md", "python examples/frontend_models.py build/frontends"):
        ("parse", "trains FrontNet (minutes); test_frontends builds the same models small"),
    ("docs/host_tools.md", "host_tools convert examples/frontend_models.py:FrontNet --weights build/frontends/frontnet.pt \\"):
        ("parse", "needs the models of the block above; test_frontends converts each format through the CLI"),
}


def all_blocks():
    return [(str(p.relative_to(ROOT)), first, text) for p in DOCS for first, text in blocks(p)]


def test_every_block_is_checked():
    found = {(f, first) for f, first, _ in all_blocks()}
    assert found - set(BLOCKS) == set(), "blocks without a check: add them to BLOCKS"
    assert set(BLOCKS) - found == set(), "BLOCKS names blocks that are gone"


def block(file, first):
    return next(text for f, fl, text in all_blocks() if (f, fl) == (file, first))


def commands(text):
    """The shell commands of a block: continuation lines joined, comments dropped."""
    text = text.replace("\\\n", " ")
    return [line.split(" #")[0].strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("key", [k for k, (how, _) in BLOCKS.items() if how == "parse"])
def test_parse_blocks(key):
    text = block(*key)
    if text.lstrip().startswith(("import", "from", "f =")):
        # a sketch's elided middle (`... m.train_step(x, label, lr) ...`) stands for any statement
        compile(re.sub(r"^\.\.\. .* \.\.\.$", "pass", text, flags=re.M), key[0], "exec")
        return
    for cmd in commands(text):
        argv = shlex.split(cmd)
        if argv[0] == "host_tools":
            build_parser().parse_args(argv[1:])            # exits (fails) on an invalid command line
        elif argv[0] == "make":
            # MAKE=true: make -n still runs the recipes' sub-makes, which need the trees they build
            res = subprocess.run(["make", "-n", "MAKE=true", *argv[1:]], cwd=ROOT, capture_output=True, text=True)
            assert res.returncode == 0, res.stderr
        elif argv[0] == "python" and argv[1] == "-m" or argv[0] in ("flower-superlink", "flower-supernode", "flwr"):
            # a module's or a tool's own command line: it starts, and its --help names every option used
            exe = [sys.executable, "-m", argv[2]] if argv[0] == "python" else [str(Path(sys.executable).parent / argv[0])]
            sub = [a for a in argv[1:] if not a.startswith("-")][:1] if argv[0] == "flwr" else []
            res = subprocess.run([*exe, *sub, "--help"], cwd=ROOT, capture_output=True, text=True)
            assert res.returncode == 0, res.stderr
            for opt in (a.split("=")[0] for a in argv if a.startswith("--")):
                assert opt in res.stdout, (cmd, opt)
        elif argv[0] == "python":
            compile((ROOT / argv[1]).read_text(), argv[1], "exec")
        elif argv[0] == "mpremote":
            res = subprocess.run([sys.executable, "-m", "mpremote", "help"], capture_output=True, text=True)
            assert re.search(rf"^\s*{argv[1]}\b", res.stdout, re.M), argv
        else:
            raise AssertionError(f"no check for {cmd}")


# --- blocks that run ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """build/demo/ in small: FashionNet's checkpoint (random weights), calibration and validation
    images, the board's data files (40 training images: the README session trains on 200, so the
    training file repeats them)."""
    import torch
    sys.path.insert(0, str(ROOT / "examples"))
    from fashion_net import FashionNet
    boards.build_firmware("qemu-m3")
    d = tmp_path_factory.mktemp("demo")
    torch.manual_seed(0)
    torch.save(FashionNet().state_dict(), d / "fashion_net.pt")
    rng = np.random.default_rng(3)
    x = rng.random((16, 1, 28, 28), dtype=np.float32)
    np.savez(d / "calib.npz", x=x)
    np.savez(d / "val.npz", x=x, y=np.arange(16) % 10)
    images = rng.integers(-128, 128, size=(20, 784)).astype(np.int8)
    labels = bytes(rng.integers(0, 10, size=20).tolist())
    (d / "train.bin").write_bytes(images.tobytes())
    (d / "train_labels.bin").write_bytes(labels)
    (d / "test.bin").write_bytes(images[:8].tobytes())
    (d / "test_labels.bin").write_bytes(labels[:8])
    return d


@pytest.fixture(scope="module")
def converted(demo, tmp_path_factory):
    """The demo's FashionNet converted with the defaults, for the blocks that open a model."""
    mct = tmp_path_factory.mktemp("converted") / "fashion.mct"
    res = subprocess.run([sys.executable, "-m", "host_tools", "convert", "examples/fashion_net.py:FashionNet",
                          "--calib", demo / "calib.npz", "-o", mct], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return mct


def run_shell(text, demo, cwd, subs=()):
    for cmd in commands(text):
        cmd = cmd.replace("build/demo/", f"{demo}/")
        if cwd != ROOT:     # the repository's files where the block names them from its root
            cmd = re.sub(r"(?<=\s)(examples|natmod|boards)/", lambda m: f"{ROOT}/{m.group(1)}/", cmd)
        for a, b in subs:
            cmd = cmd.replace(a, b)
        argv = shlex.split(cmd)
        assert argv[0] == "host_tools"
        res = subprocess.run([sys.executable, "-m", "host_tools", *argv[1:]], cwd=cwd, capture_output=True,
                             text=True, timeout=900)
        assert res.returncode == 0, f"{cmd}\n{res.stdout}\n{res.stderr}"
        assert "Traceback" not in res.stderr
        yield res


def test_host_tools_walk_through(demo, tmp_path):
    """docs/host_tools.md's steps 2-5 and its deploy example, in order, as written."""
    f = "docs/host_tools.md"
    keys = [k for k in BLOCKS if k[0] == f and BLOCKS[k][0] == "run" and k[1].startswith("host_tools")]
    convert, check, run, deploy, export = (block(*k) for k in keys)
    [res] = run_shell(convert, demo, ROOT)
    assert "top-1 agreement" in res.stdout and (demo / "fashion.mct").exists()
    [res] = run_shell(check, demo, ROOT)
    assert "check passed" in res.stdout
    [res] = run_shell(run, demo, ROOT)
    assert "saved /flash/trained.mct" in res.stdout and "accuracy before" in res.stdout
    # the deploy example on the emulated board, its export in the folder it fetched into
    port = ("--port /dev/ttyACM0", f"--emulate qemu-m3 --flash {tmp_path}/flash.img")
    results = list(run_shell(deploy, demo, tmp_path, [port]))
    assert "saved trained.mct" in results[0].stdout
    assert (tmp_path / "trained.mct").exists() and (tmp_path / "trained_state.pt").exists()
    [res] = run_shell(export, demo, tmp_path)
    assert re.search(r"classifier\.weight\s+yes\s+[1-9]", res.stdout), res.stdout


def test_readme_repl_session(demo, converted, tmp_path):
    """README's session, typed line by line into `host_tools repl --board qemu-m3` with the demo's files."""
    (tmp_path / "train.bin").write_bytes((demo / "train.bin").read_bytes() * 10)          # 200 images
    (tmp_path / "train_labels.bin").write_bytes((demo / "train_labels.bin").read_bytes() * 10)
    mct = tmp_path / "fashion.mct"
    mct.write_bytes(converted.read_bytes())
    text = block("README.md", ">>> import mcutrain")
    term = Terminal([sys.executable, "-m", "host_tools", "repl", "--board", "qemu-m3", mct,
                     tmp_path / "train.bin", tmp_path / "train_labels.bin"], cwd=ROOT)
    try:
        term.expect(r"Use Ctrl-\] or Ctrl-x to exit this shell")
        term.type("\r")
        term.expect(r">>> $")
        lines = text.splitlines()
        for line, following in zip(lines, lines[1:] + [""]):
            if not line.startswith(">>> "):
                continue                                # the session's output: values differ here
            term.type(line[4:] + "\r")
            if following.startswith("..."):             # a compound statement: an empty line ends it
                term.expect(r"\.\.\. $")
                term.type("\r")
            seen = term.expect(r"\n>>> $", timeout=300)
            assert "Traceback" not in seen, seen
        assert "'steps': 200" in seen
        term.type("\x1d")
        assert term.wait() == 0
    finally:
        term.close()


BOARD_PREAMBLE = {
    "layers = m.layers()": "import mcutrain\nm = mcutrain.Model(open('/rom/fashion.mct', 'rb'))\n"
                           "x = bytes(784)\nlabel, lr = 3, 0.05\n",
}


@pytest.mark.parametrize("first", ["import mcutrain", "layers = m.layers()"])
def test_api_blocks_on_the_board(first, converted, tmp_path):
    mct = tmp_path / "fashion.mct"
    mct.write_bytes(converted.read_bytes())
    script = tmp_path / "block.py"
    script.write_text(BOARD_PREAMBLE.get(first, "") + block("docs/api.md", first) + "print('block ran')\n")
    r = boards.run_script("qemu-m3", script, [mct], timeout=300)
    assert r.returncode == 0 and "block ran" in r.output, r.output


TRAIN_PY = """\
import os
import mcutrain
m = mcutrain.Model(open('model.mct', 'rb'))
m.train_step(bytes(784), 1, 0.05)
with open('trained.mct' if os.getcwd() != '/rom' else '/flash/trained.mct', 'wb') as f:
    m.save(f)
print('trained')
"""


@pytest.mark.parametrize("file", ["docs/host_tools.md", "boards/README.md"])
def test_python_blocks_on_the_host(file, demo, converted, tmp_path):
    """The Python examples of EmulatedBoard, run in a folder with the files they name."""
    mct = tmp_path / "model.mct"
    mct.write_bytes(converted.read_bytes())
    (tmp_path / "train.py").write_text(TRAIN_PY)
    (tmp_path / "data.bin").write_bytes((demo / "train.bin").read_bytes()[:784])   # deployed, not read
    text = block(file, "from host_tools.boards import runners as boards")
    res = subprocess.run([sys.executable, "-c", text], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (tmp_path / "flash.img").exists()
    if file == "docs/host_tools.md":
        assert (tmp_path / "trained.mct").read_bytes()[:4] == b"MCTR"
