"""Alternative lab 4: max scaling, numpy shuffling, 1/n_c weights, Kaiming init."""
import numpy as np
import torch
from torch import nn

FEATURES = ("T1w", "FA", "MD", "AD", "RD")
CLASSES = ("thalamus", "genu of the corpus callosum", "subcortical white matter")


def split_train_val(x, y, val_fraction=0.2, seed=0):
    if len(x) != len(y) or not (0 < val_fraction < 1):
        raise ValueError("need len(x) == len(y) and 0 < val_fraction < 1")
    rng = np.random.default_rng(seed + 12345)
    n = len(y)
    is_val = np.zeros(n, dtype=bool)
    is_val[rng.choice(n, size=int(round(val_fraction * n)), replace=False)] = True
    tr, va = torch.from_numpy(np.flatnonzero(~is_val)), torch.from_numpy(np.flatnonzero(is_val))
    return x[tr], y[tr], x[va], y[va]


class Normalizer:
    def __init__(self, mean, std):
        self.mean, self.std = mean, std

    def transform(self, x):
        return (x - self.mean.to(x.device)) / self.std.to(x.device)


def fit_normalizer(x_train):
    scale = x_train.abs().max(dim=0).values.clone()
    scale[scale == 0] = 1
    return Normalizer(torch.zeros_like(scale), scale)


def class_weights(y, n_classes=3):
    n = np.bincount(np.asarray(y), minlength=n_classes).astype(np.float64)
    w = np.zeros(n_classes)
    w[n > 0] = 1.0 / n[n > 0]
    return torch.tensor(w, dtype=torch.float32)


def build_dti_mlp(n_features=5, width=100, n_hidden=4, n_classes=3):
    sizes = [n_features] + [width] * n_hidden
    mods = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        lin = nn.Linear(a, b)
        nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
        nn.init.zeros_(lin.bias)
        mods += [lin, nn.ReLU()]
    mods.append(nn.Linear(width, n_classes))
    return nn.Sequential(*mods)


def train(model, x_train, y_train, x_val, y_val, epochs, lr=1e-3, batch_size=1024, class_weights=None, device="cpu", seed=0):
    model = model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    w = None if class_weights is None else class_weights.float().to(device)
    rng = np.random.default_rng(seed)
    hist = {k: [] for k in ("train_loss", "train_acc", "val_loss", "val_acc")}
    xt, yt = x_train.to(device), y_train.to(device)
    for _ in range(epochs):
        order = torch.from_numpy(rng.permutation(len(yt))).to(device)
        for b in torch.split(order, batch_size):
            out = model(xt[b])
            loss = nn.functional.cross_entropy(out, yt[b], weight=w)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            for name, x, y in (("train", xt, yt), ("val", x_val.to(device), y_val.to(device))):
                out = model(x)
                hist[name + "_loss"].append(float(nn.functional.cross_entropy(out, y, weight=w)))
                hist[name + "_acc"].append(float((out.argmax(1) == y).double().mean()))
    return hist


def predict(model, x):
    dev = next(model.parameters()).device
    with torch.no_grad():
        return model(x.to(dev)).argmax(-1).cpu()


def confusion_matrix(y_true, y_pred, n_classes=3):
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    for t, p in zip(np.asarray(y_true).tolist(), np.asarray(y_pred).tolist()):
        cm[t, p] += 1
    return cm
