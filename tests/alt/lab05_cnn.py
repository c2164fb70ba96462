"""Alternative lab 5: nn.Sequential models, PyTorch default init, DataLoader batching,
Keras-style running training accuracy, inference_mode predictions, NumPy-shuffled random labels."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

VARIANTS = ("fc", "gap1", "gap4")


def global_average_pool(x):
    return x.sum(dim=-1).sum(dim=-1) / (x.shape[-1] * x.shape[-2])


class GAP(nn.Module):
    def forward(self, x):
        return global_average_pool(x)


def build_cnn(variant="fc", image_size=320):
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, not {variant}")
    if variant != "gap1" and image_size // 16 < 1:
        raise ValueError("fc and gap4 halve the image four times: image_size >= 16")
    def block(c_in, pool=True):
        return [nn.Conv2d(c_in, 4, (3, 3), padding="same"), nn.ReLU()] + ([nn.MaxPool2d(2, 2)] if pool else [])
    if variant == "gap1":
        return nn.Sequential(*block(1, pool=False), GAP(), nn.Linear(4, 1), nn.Sigmoid())
    layers = block(1) + block(4) + block(4) + block(4)
    side = image_size // 16
    if variant == "gap4":
        return nn.Sequential(*layers, GAP(), nn.Linear(4, 1), nn.Sigmoid())
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(4 * side * side, 16), nn.ReLU(), nn.Linear(16, 1), nn.Sigmoid())


def count_parameters(model):
    return sum(p.numel() for _, p in model.named_parameters() if p.requires_grad)


def predict_proba(model, x, batch_size=50):
    model.eval()
    dev = next(model.parameters()).device
    with torch.inference_mode():
        return torch.cat([model(xb.to(dev)).squeeze(1).float().cpu() for xb in torch.split(x, batch_size)])


def predict(model, x, threshold=0.5):
    return torch.where(predict_proba(model, x) > threshold, 1, 0).to(torch.int64)


def evaluate(model, x, y):
    p = predict_proba(model, x).double()
    y = y.double()
    loss = -(y * p.clamp_min(1e-12).log() + (1 - y) * (1 - p).clamp_min(1e-12).log()).mean()
    return loss.item(), ((p > 0.5).double() == y).double().mean().item()


def train(model, x_train, y_train, x_val, y_val, epochs, lr=1e-3, batch_size=10, device="cpu", seed=0):
    model = model.to(device)
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(seed + 1))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    bce = nn.BCELoss(reduction="sum")
    hist = {"train_loss": [], "train_acc": [], "val_loss": [], "val_acc": []}
    for _ in range(epochs):
        model.train()
        total, correct, n = 0.0, 0, 0
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            p = model(xb).squeeze(1)
            loss = bce(p, yb) / len(yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(yb)
            correct += ((p.detach() >= 0.5).float() == yb).sum().item()
            n += len(yb)
        hist["train_loss"].append(total / n)
        hist["train_acc"].append(correct / n)
        model.eval()
        with torch.no_grad():
            pv = model(x_val.to(device)).squeeze(1).cpu()
        hist["val_loss"].append(nn.functional.binary_cross_entropy(pv, y_val).item())
        hist["val_acc"].append(((pv > 0.5).float() == y_val).float().mean().item())
    return hist


def randomize_labels(y, seed):
    if len(y.shape) != 1:
        raise ValueError("randomize_labels shuffles a vector of labels (N,)")
    order = np.random.default_rng(seed).permutation(y.shape[0])
    return y.detach().clone()[torch.as_tensor(order, device=y.device)]
