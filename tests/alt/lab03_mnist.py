"""A differently written, correct lab 3 (robustness check of the grader)."""
from collections import OrderedDict
from pathlib import Path
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def build_mlp(n_hidden_layers, width=30, activation="sigmoid", n_in=784, n_out=10):
    if activation not in ("sigmoid", "relu"):
        raise ValueError("activation: use 'sigmoid' or 'relu'")
    if n_hidden_layers not in range(1, 6):
        raise ValueError("1..5 hidden layers")
    d = OrderedDict(flat=nn.Flatten())
    sizes = [n_in] + [width] * n_hidden_layers
    for i in range(n_hidden_layers):
        d[f"fc{i}"] = nn.Linear(sizes[i], sizes[i + 1])
        d[f"act{i}"] = nn.ReLU() if activation == "relu" else nn.Sigmoid()
    d["out"] = nn.Linear(sizes[-1], n_out)
    d["logp"] = nn.LogSoftmax(dim=-1)
    return nn.Sequential(d)


def train(model, x_train, y_train, epochs=15, lr=0.003, momentum=0.9, batch_size=64, device="cpu", seed=0,
          on_epoch_end=None):
    model = model.to(device)
    opt = torch.optim.SGD(model.parameters(), lr, momentum)
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    crit = nn.CrossEntropyLoss()
    out = []
    for epoch in range(epochs):
        losses, sizes = [], []
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            logp = model(xb)
            loss = crit(logp, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            sizes.append(len(yb))
        out.append(float(np.average(losses, weights=sizes)))
        if on_epoch_end:
            on_epoch_end(epoch + 1, model)
    return out


@torch.no_grad()
def accuracy(model, x, y, device="cpu", batch_size=1000):
    model.to(device).eval()
    preds = torch.cat([model(xb.to(device)).argmax(1).cpu() for xb in x.split(batch_size)])
    return (preds == y.cpu()).float().mean().item()


def layer_gradient_norms(model, x, y):
    for p in model.parameters():
        p.grad = None
    dev = next(model.parameters()).device
    F.nll_loss(model(x.to(dev)), y.to(dev)).backward()
    return [float(torch.linalg.vector_norm(m.bias.grad)) for m in model if isinstance(m, nn.Linear)]


def subsample(x, y, fraction, seed=0):
    from sklearn.model_selection import train_test_split
    if not 0 < fraction <= 1:
        raise ValueError("fraction must be in (0, 1]")
    if fraction == 1:
        idx = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
        return x[idx], y[idx]
    idx, _ = train_test_split(np.arange(len(y)), train_size=fraction, stratify=y.numpy(), random_state=seed)
    idx = torch.as_tensor(idx)
    return x[idx], y[idx]


def plot_losses(histories, path, title="training loss per epoch"):
    import matplotlib.pyplot as plt
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    plt.figure()
    for k, v in histories.items():
        plt.plot(np.arange(len(v)) + 1, v, label=k)
    plt.xlabel("Epoch"); plt.ylabel("Loss"); plt.title(title); plt.legend()
    plt.savefig(str(path)); plt.close()
    return Path(path)
