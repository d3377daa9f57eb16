"""Pretrain FashionNet on Fashion-MNIST classes 0-4 only, and write the on-device demo data.

The device demo is transfer learning: the int8 model, pretrained on 5 classes (T-shirt, Trouser,
Pullover, Dress, Coat) but with a 10-way classifier, learns the 5 classes it never saw (Sandal,
Shirt, Sneaker, Bag, Ankle boot) on the board, training only the classifier and the biases of the
last N convolutions with batch-1 SGD.

Writes to OUT_DIR (default build/demo):
  fashion_net.pt                      state_dict of examples/fashion_net.py:FashionNet
  calib.npz                           x: [N,1,28,28] float32 in [0,1] (training images, all classes)
  train.bin / train_labels.bin        device training set: int8 pixel-128, 784 bytes per image,
                                      concatenated; labels uint8 (balanced over all 10 classes)
  test.bin / test_labels.bin          held-out test-set images (t10k), same layout, balanced

Then it checks, in float PyTorch, what the device will do (sparse fine-tuning on train.bin,
evaluated on test.bin), so that the demo's learning rate and N are known to work.

    python examples/pretrain_fashion.py [OUT_DIR] [--epochs 3] [--sweep]
"""
import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

from fashion_net import FashionNet  # noqa: E402
from host_tools.datasets import load_fashion_mnist  # noqa: E402

OLD_CLASSES = (0, 1, 2, 3, 4)
SEED = 0


def to_float(images_u8):
    return torch.from_numpy(images_u8.astype(np.float32) / 255.0).unsqueeze(1)


def balanced_indices(labels, per_class, rng, exclude=None):
    idx = []
    for c in range(10):
        cand = np.flatnonzero(labels == c)
        if exclude is not None:
            cand = np.setdiff1d(cand, exclude)
        idx.append(rng.choice(cand, per_class, replace=False))
    idx = np.concatenate(idx)
    rng.shuffle(idx)
    return idx


def evaluate(model, x, y):
    model.eval()
    with torch.no_grad():
        pred = model(x).argmax(1).numpy()
    y = np.asarray(y)
    old = np.isin(y, OLD_CLASSES)
    acc = lambda m: float((pred[m] == y[m]).mean()) if m.any() else float("nan")
    return acc(old), acc(~old), acc(np.ones_like(old))


def pretrain(model, x, y, epochs, batch=128, lr=0.05):
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=4e-5, nesterov=True)
    steps = epochs * ((len(x) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    g = torch.Generator().manual_seed(SEED)
    for ep in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=g)
        total, correct, t0 = 0.0, 0, time.time()
        for i in range(0, len(x), batch):
            b = perm[i:i + batch]
            out = model(x[b])
            loss = F.cross_entropy(out, y[b], label_smoothing=0.1)  # softer logits transfer better
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(b)
            correct += int((out.argmax(1) == y[b]).sum())
        print(f"  epoch {ep + 1}/{epochs}: loss {total / len(x):.4f}, train acc {correct / len(x):.3f} "
              f"({time.time() - t0:.1f} s)")


def conv_bn_layers(model):
    """(conv, bn) pairs in forward order: the device's Conv2d layers after BN folding."""
    mods = list(model.modules())
    pairs = []
    for i, m in enumerate(mods):
        if isinstance(m, nn.Conv2d):
            bn = mods[i + 1] if i + 1 < len(mods) and isinstance(mods[i + 1], nn.BatchNorm2d) else None
            pairs.append((m, bn))
    return pairs


def sparse_finetune(state, x, y, x_test, y_test, lr, n_bias, epochs, seed=SEED):
    """Float stand-in for the device: batch-1 SGD (no momentum) on the classifier and the biases of
    the last n_bias convs, BN frozen (eval mode: training BN's beta in eval mode is training the
    folded conv bias). Returns accuracies (old, new, all) before and after each epoch."""
    model = FashionNet()
    model.load_state_dict(state)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    params = [model.classifier.weight, model.classifier.bias]
    for conv, bn in conv_bn_layers(model)[len(conv_bn_layers(model)) - n_bias:] if n_bias else []:
        params.append(bn.bias if bn is not None else conv.bias)
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.SGD(params, lr=lr)
    history = [evaluate(model, x_test, y_test)]
    g = torch.Generator().manual_seed(seed)
    for ep in range(epochs):
        model.eval()  # BN statistics stay frozen, as on the device
        for i in torch.randperm(len(x), generator=g).tolist():
            loss = F.cross_entropy(model(x[i:i + 1]), y[i:i + 1])
            opt.zero_grad()
            loss.backward()
            opt.step()
        history.append(evaluate(model, x_test, y_test))
    return history


def fmt(acc):
    return f"old {acc[0] * 100:5.1f}%  new {acc[1] * 100:5.1f}%  all {acc[2] * 100:5.1f}%"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", nargs="?", default="build/demo")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--n-train", type=int, default=50, help="device training samples per class")
    ap.add_argument("--n-test", type=int, default=50, help="device test samples per class")
    ap.add_argument("--n-calib", type=int, default=300, help="calibration images (all classes)")
    ap.add_argument("--ft-lr", type=float, default=0.01, help="fine-tuning check: learning rate")
    ap.add_argument("--ft-n-bias", type=int, default=2, help="fine-tuning check: last N conv biases")
    ap.add_argument("--ft-epochs", type=int, default=3)
    ap.add_argument("--sweep", action="store_true", help="fine-tuning check over several lr and N")
    args = ap.parse_args(argv)

    torch.set_num_threads(2)
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    os.makedirs(args.out_dir, exist_ok=True)

    x_tr_u8, y_tr = load_fashion_mnist("train")
    x_te_u8, y_te = load_fashion_mnist("test")

    # --- the device's data, all 10 classes, balanced; fixed before pretraining
    dev_train = balanced_indices(y_tr, args.n_train, rng)
    dev_test = balanced_indices(y_te, args.n_test, rng)
    calib = balanced_indices(y_tr, args.n_calib // 10, rng, exclude=dev_train)

    # --- pretraining on classes 0-4 only (the device training samples are left out)
    old = np.isin(y_tr, OLD_CLASSES)
    old[dev_train] = False
    x_pre, y_pre = to_float(x_tr_u8[old]), torch.from_numpy(y_tr[old].astype(np.int64))
    model = FashionNet()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"pretraining FashionNet ({n_params} parameters) on {len(x_pre)} images of classes "
          f"{list(OLD_CLASSES)}, {args.epochs} epochs, 2 threads")
    t0 = time.time()
    pretrain(model, x_pre, y_pre, args.epochs)
    t_pre = time.time() - t0
    print(f"pretraining took {t_pre:.1f} s")

    x_test, y_test = to_float(x_te_u8[dev_test]), torch.from_numpy(y_te[dev_test].astype(np.int64))
    x_full_old = np.isin(y_te, OLD_CLASSES)
    acc_full = evaluate(model, to_float(x_te_u8[x_full_old]), y_te[x_full_old])[0]
    acc = evaluate(model, x_test, y_test)
    print(f"float accuracy, full test set classes 0-4: {acc_full * 100:.1f}%")
    print(f"float accuracy on test.bin ({len(dev_test)} images): {fmt(acc)}")

    # --- write everything
    state = model.state_dict()
    torch.save(state, os.path.join(args.out_dir, "fashion_net.pt"))
    np.savez_compressed(os.path.join(args.out_dir, "calib.npz"),
                        x=(x_tr_u8[calib].astype(np.float32) / 255.0)[:, None],
                        y=y_tr[calib].astype(np.int64))

    def write_bin(name, images, labels):
        (images.astype(np.int16) - 128).astype(np.int8).tofile(os.path.join(args.out_dir, name + ".bin"))
        labels.astype(np.uint8).tofile(os.path.join(args.out_dir, name + "_labels.bin"))

    write_bin("train", x_tr_u8[dev_train], y_tr[dev_train])
    write_bin("test", x_te_u8[dev_test], y_te[dev_test])
    # a float copy of the device test set, for `host_tools convert --val`
    np.savez_compressed(os.path.join(args.out_dir, "val.npz"),
                        x=(x_te_u8[dev_test].astype(np.float32) / 255.0)[:, None],
                        y=y_te[dev_test].astype(np.int64))
    print(f"wrote {args.out_dir}/: fashion_net.pt, calib.npz ({len(calib)}), val.npz, "
          f"train.bin ({len(dev_train)}), test.bin ({len(dev_test)}) + labels")

    # --- what the device will do, in float
    x_ft, y_ft = to_float(x_tr_u8[dev_train]), torch.from_numpy(y_tr[dev_train].astype(np.int64))
    configs = [(args.ft_lr, args.ft_n_bias)]
    if args.sweep:
        configs = [(lr, n) for lr in (0.01, 0.02, 0.05, 0.1) for n in (0, 2, 4, 7, 11)]
    print(f"float sparse fine-tuning on train.bin ({len(dev_train)} images, batch 1, SGD, "
          f"{args.ft_epochs} epochs), test.bin accuracy:")
    for lr, n in configs:
        t0 = time.time()
        hist = sparse_finetune(state, x_ft, y_ft, x_test, y_test, lr, n, args.ft_epochs)
        steps = " -> ".join(f"{h[2] * 100:.1f}" for h in hist)
        print(f"  lr {lr:<5} N {n:<2}: all {steps}%   final {fmt(hist[-1])}  ({time.time() - t0:.1f} s)")


if __name__ == "__main__":
    main()
