"""Planted bugs for lab 3 (MNIST with a fully connected network)."""

from pathlib import Path

from tests.planted import Bug

BUGS = [
    Bug("lab03", "no_shuffling", "perm = torch.randperm(n, generator=g)", "perm = torch.arange(n)",
        ("test_train_shuffles_every_epoch",), "not shuffled"),
    Bug("lab03", "shuffled_once_not_every_epoch",
        "    for epoch in range(1, epochs + 1):\n        perm = torch.randperm(n, generator=g)\n",
        "    perm = torch.randperm(n, generator=g)\n    for epoch in range(1, epochs + 1):\n",
        ("test_train_shuffles_every_epoch",), "reshuffle every epoch"),
    Bug("lab03", "shuffling_ignores_seed", "perm = torch.randperm(n, generator=g)", "perm = torch.randperm(n)",
        ("test_train_shuffling_follows_seed",), "torch.Generator"),
    Bug("lab03", "softmax_instead_of_log_softmax", "layers += [nn.Linear(size, n_out), nn.LogSoftmax(dim=1)]",
        "layers += [nn.Linear(size, n_out), nn.Softmax(dim=1)]",
        ("test_build_mlp_architecture", "test_outputs_are_log_probabilities"), "LogSoftmax"),
    Bug("lab03", "relu_builds_sigmoid", 'acts = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU}',
        'acts = {"sigmoid": nn.Sigmoid, "relu": nn.Sigmoid}',
        ("test_build_mlp_architecture", "test_vanishing_gradients_sigmoid_vs_relu"), "expected ReLU"),
    Bug("lab03", "zero_grad_missing", "            optimizer.zero_grad()\n", "",
        ("test_train_step_is_sgd_with_momentum_on_nll",), "zero_grad"),
    Bug("lab03", "momentum_missing", "optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)",
        "optimizer = torch.optim.SGD(model.parameters(), lr=lr)",
        ("test_train_step_is_sgd_with_momentum_on_nll", "test_accuracy_after_training_1x30_sigmoid"), "momentum"),
    Bug("lab03", "epoch_loss_summed", "history.append(total / n)", "history.append(total)",
        ("test_train_step_is_sgd_with_momentum_on_nll", "test_train_returns_one_loss_per_epoch_and_decreases"),
        "too large"),
    Bug("lab03", "model_not_moved_in_train", "    model.to(device)\n    loss_fn = nn.NLLLoss()\n", "    loss_fn = nn.NLLLoss()\n",
        ("test_train_and_accuracy_move_model_and_batches_to_device",), "model.to(device)"),
    Bug("lab03", "batch_not_moved_in_accuracy", "x_b = x[start : start + batch_size].to(device)",
        "x_b = x[start : start + batch_size]",
        ("test_train_and_accuracy_move_model_and_batches_to_device",), "accuracy(device='cpu')"),
    Bug("lab03", "hard_coded_cuda_in_accuracy", "    model.to(device)\n    model.eval()\n",
        '    device = "cuda" if torch.cuda.is_available() else device\n    model.to(device)\n    model.eval()\n',
        ("test_no_hard_coded_device",), "accuracy() hard-codes"),
    Bug("lab03", "accuracy_drops_last_batch", "for start in range(0, x.shape[0], batch_size):",
        "for start in range(0, x.shape[0] - batch_size + 1, batch_size):",
        ("test_accuracy_function_matches_grader",), "accuracy(model, x, y, batch_size=300)"),
    Bug("lab03", "gradient_norms_of_weights", "return [m.bias.grad.norm().item()", "return [m.weight.grad.norm().item()",
        ("test_layer_gradient_norms_match_autograd", "test_vanishing_gradients_sigmoid_vs_relu"), "||dC/db"),
    Bug("lab03", "gradient_norms_not_zeroed", "    model.zero_grad()\n    loss = nn.NLLLoss()", "    loss = nn.NLLLoss()",
        ("test_layer_gradient_norms_match_autograd",), "zero_grad"),
    Bug("lab03", "subsample_not_stratified", "    idx = torch.cat(keep)\n",
        "    idx = torch.randperm(len(y), generator=g)[: round(fraction * len(y))]\n",
        ("test_subsample_is_stratified_and_exact",), "not stratified"),
    Bug("lab03", "plot_axes_unlabelled", '    ax.set_xlabel("epoch")\n    ax.set_ylabel("training loss (NLL)")\n', "",
        ("test_plot_losses_one_curve_per_experiment",), "label the axes"),
    # Contracts of the docstrings (issue: a plain mean of the batch losses scored 24/24).
    Bug("lab03", "epoch_loss_plain_mean_of_batches",
        "            total += loss.item() * len(idx)\n        history.append(total / n)\n",
        "            total += loss.item()\n        history.append(total / math.ceil(n / batch_size))\n",
        ("test_train_epoch_loss_weights_batches_by_size",), "weight each mini-batch"),
    Bug("lab03", "on_epoch_end_before_the_steps",
        "        model.train()\n        total = 0.0\n        for start in range(0, n, batch_size):\n"
        "            idx = perm[start : start + batch_size]\n            x_b, y_b = x_train[idx].to(device), y_train[idx].to(device)\n"
        "            optimizer.zero_grad()\n            loss = loss_fn(model(x_b), y_b)\n            loss.backward()\n"
        "            optimizer.step()\n            total += loss.item() * len(idx)\n        history.append(total / n)\n"
        "        if on_epoch_end is not None:\n            on_epoch_end(epoch, model)\n",
        "        if on_epoch_end is not None:\n            on_epoch_end(epoch, model)\n"
        "        model.train()\n        total = 0.0\n        for start in range(0, n, batch_size):\n"
        "            idx = perm[start : start + batch_size]\n            x_b, y_b = x_train[idx].to(device), y_train[idx].to(device)\n"
        "            optimizer.zero_grad()\n            loss = loss_fn(model(x_b), y_b)\n            loss.backward()\n"
        "            optimizer.step()\n            total += loss.item() * len(idx)\n        history.append(total / n)\n",
        ("test_train_calls_on_epoch_end_after_each_epoch",), "after"),
    Bug("lab03", "on_epoch_end_numbered_from_0", "            on_epoch_end(epoch, model)", "            on_epoch_end(epoch - 1, model)",
        ("test_train_calls_on_epoch_end_after_each_epoch",), "numbered from 1"),
    Bug("lab03", "accuracy_in_train_mode", "    model.to(device)\n    model.eval()\n", "    model.to(device)\n",
        ("test_accuracy_evaluates_in_eval_mode_without_gradients",), "model.eval()"),
    Bug("lab03", "accuracy_records_gradients", "    with torch.no_grad():\n        for start in range(0, x.shape[0], batch_size):",
        "    if True:\n        for start in range(0, x.shape[0], batch_size):",
        ("test_accuracy_evaluates_in_eval_mode_without_gradients",), "torch.no_grad()"),
    Bug("lab03", "accuracy_returns_tensor", "    return correct / x.shape[0]\n", "    return torch.tensor(correct / x.shape[0])\n",
        ("test_accuracy_function_matches_grader", "test_accuracy_evaluates_in_eval_mode_without_gradients"), "Python float"),
    Bug("lab03", "gradient_norms_inputs_not_moved", "loss = nn.NLLLoss()(model(x.to(device)), y.to(device))",
        "loss = nn.NLLLoss()(model(x), y)",
        ("test_train_and_accuracy_move_model_and_batches_to_device",), "layer_gradient_norms"),
    Bug("lab03", "gradient_norms_as_tensors", "return [m.bias.grad.norm().item() for m", "return [m.bias.grad.norm() for m",
        ("test_layer_gradient_norms_match_autograd",), "Python floats"),
    Bug("lab03", "custom_initialisation", "    return nn.Sequential(*layers)\n",
        "    model = nn.Sequential(*layers)\n    for p in model.parameters():\n        nn.init.normal_(p, std=0.1)\n    return model\n",
        ("test_build_mlp_architecture",), "default initialisation"),
    Bug("lab03", "plot_without_title", "    ax.set_title(title)\n    ax.legend(fontsize=\"small\")\n    ax.grid(alpha=0.3)\n",
        "    ax.legend(fontsize=\"small\")\n    ax.grid(alpha=0.3)\n",
        ("test_plot_losses_one_curve_per_experiment",), "title"),
    Bug("lab03", "plot_epochs_from_0", "ax.plot(range(1, len(losses) + 1), list(losses), marker=\".\", label=name)",
        "ax.plot(list(losses), marker=\".\", label=name)", ("test_plot_losses_one_curve_per_experiment",), "1 ..."),
    Bug("lab03", "plot_no_parent_folders", "    path = Path(path)\n    path.parent.mkdir(parents=True, exist_ok=True)\n    fig, ax = plt.subplots(figsize=(6.4, 4.4))\n",
        "    path = Path(path)\n    fig, ax = plt.subplots(figsize=(6.4, 4.4))\n",
        ("test_plot_losses_one_curve_per_experiment",), "parent"),
    Bug("lab03", "plot_figure_left_open", "    fig.savefig(path, dpi=120)\n    plt.close(fig)\n    return path\n\n\ndef plot_accuracy_curves",
        "    fig.savefig(path, dpi=120)\n    return path\n\n\ndef plot_accuracy_curves",
        ("test_plot_losses_one_curve_per_experiment",), "close"),
    Bug("lab03", "subsample_accepts_zero_fraction", "    if not 0.0 < fraction <= 1.0:\n", "    if not 0.0 <= fraction <= 1.0:\n",
        ("test_subsample_is_stratified_and_exact",), "must raise ValueError"),
    Bug("lab03", "accuracy_ignores_batch_size",
        "        for start in range(0, x.shape[0], batch_size):\n            x_b = x[start : start + batch_size].to(device)\n"
        "            y_b = y[start : start + batch_size].to(device)\n",
        "        for start in range(1):\n            x_b = x.to(device)\n            y_b = y.to(device)\n",
        ("test_accuracy_evaluates_in_eval_mode_without_gradients",), "chunks"),
    # Issue 19, forged how-checks: the probes see what a correct train() / accuracy() would show them
    # (or their records are rewritten), but the work is not done. Each earned its points before.
    Bug("lab03", "forged_order_no_training",
        "            loss.backward()\n            optimizer.step()\n",
        "            # the model sees the shuffled mini-batches, but nothing is trained\n",
        ("test_train_shuffles_every_epoch", "test_train_shuffling_follows_seed"), "did not change"),
    Bug("lab03", "forged_order_trained_in_stored_order",
        "            x_b, y_b = x_train[idx].to(device), y_train[idx].to(device)\n            optimizer.zero_grad()\n"
        "            loss = loss_fn(model(x_b), y_b)\n",
        "            model(x_train[idx].to(device))  # the probe sees the shuffled batch...\n"
        "            x_b = x_train[start : start + batch_size].to(device)  # ...training uses the stored order\n"
        "            y_b = y_train[start : start + batch_size].to(device)\n            optimizer.zero_grad()\n"
        "            loss = loss_fn(model(x_b), y_b)\n"
        "            if hasattr(model, \"batches\"):\n                model.batches.pop()  # and leaves no record\n",
        ("test_train_shuffles_every_epoch", "test_train_shuffling_follows_seed"), "stored order"),
    Bug("lab03", "on_epoch_end_called_after_training",
        "    history = []\n    for epoch in range(1, epochs + 1):\n",
        "    history, snapshots = [], []\n    for epoch in range(1, epochs + 1):\n",
        (), ""),  # placeholder, replaced below
]

_SOL = (Path(__file__).resolve().parent.parent / "solutions" / "lab03_mnist.py").read_text()
_LOOP_END = "        if on_epoch_end is not None:\n            on_epoch_end(epoch, model)\n    return history\n"
_ACC_BODY = _SOL[_SOL.index("    model.to(device)\n    model.eval()\n    correct = 0\n"):]
_ACC_BODY = _ACC_BODY[: _ACC_BODY.index("    return correct / x.shape[0]\n") + len("    return correct / x.shape[0]\n")]
_TRAIN_LOOP = _SOL[_SOL.index("    history = []\n"):]
_TRAIN_LOOP = _TRAIN_LOOP[: _TRAIN_LOOP.index(_LOOP_END) + len(_LOOP_END)]

BUGS[-1] = Bug(
    "lab03", "on_epoch_end_called_after_training", _TRAIN_LOOP,
    _TRAIN_LOOP.replace("    history = []\n", "    history, snapshots = [], []\n").replace(
        _LOOP_END,
        "        snapshots.append((epoch, __import__('copy').deepcopy(model)))\n"
        "    for epoch, snapshot in snapshots:  # every call sees the right parameters, but after the training\n"
        "        if on_epoch_end is not None:\n            on_epoch_end(epoch, snapshot)\n    return history\n"),
    ("test_train_calls_on_epoch_end_after_each_epoch",), "not called once after each epoch")
BUGS.append(Bug(
    "lab03", "forged_eval_mode_record", _ACC_BODY,
    _ACC_BODY.replace("    model.eval()\n", "").replace(
        "    return correct / x.shape[0]\n",
        "    for i, call in enumerate(getattr(model, \"calls\", [])):  # the probe's record says eval mode\n"
        "        model.calls[i] = (*call[:2], False, False, *call[4:])\n    return correct / x.shape[0]\n"),
    ("test_accuracy_evaluates_in_eval_mode_without_gradients",), "model.eval()"))
