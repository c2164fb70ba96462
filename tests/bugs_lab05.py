"""Planted bugs for lab 5 (CNN image-quality classifier)."""

from tests.planted import Bug

BUGS = [
    Bug("lab05", "sigmoid_applied_twice", "return torch.sigmoid(self.out(h))", "return torch.sigmoid(torch.sigmoid(self.out(h)))",
        # Not aimed at the training check: sigmoid(sigmoid(z)) still separates the classes at
        # the 0.5 threshold when z -> -inf (output -> 0.5 exactly), so it passed 1 of 20 seeds.
        ("test_output_is_sigmoid_probability",), "sigmoid is applied twice"),
    Bug("lab05", "bce_with_logits_on_probabilities", "criterion = nn.BCELoss()", "criterion = nn.BCEWithLogitsLoss()",
        ("test_train_step_is_adam_on_binary_cross_entropy",), "second sigmoid"),
    Bug("lab05", "labels_swapped", "loss = criterion(model(xb).reshape(-1), yb)", "loss = criterion(model(xb).reshape(-1), 1.0 - yb)",
        ("test_train_step_is_adam_on_binary_cross_entropy", "test_trained_gap4_reaches_validation_accuracy"), "labels"),
    Bug("lab05", "pool_over_wrong_dims", "return x.mean(dim=(2, 3))", "return x.mean(dim=(1, 2))",
        ("test_global_average_pool_matches_adaptive_avg_pool",), "global_average_pool"),
    Bug("lab05", "model_not_in_train_mode", "        model.train()\n", "",
        ("test_train_puts_model_in_train_mode",), "model.train()"),
    Bug("lab05", "features_detached_before_pooling", "h = global_average_pool(h)", "h = global_average_pool(h.detach())",
        ("test_gradients_reach_every_conv_layer",), "conv layer 1"),
    Bug("lab05", "conv_without_padding", "nn.Conv2d(channels, N_FILTERS, kernel_size=3, padding=1)",
        "nn.Conv2d(channels, N_FILTERS, kernel_size=3)",
        ("test_parameter_counts_match_lecture", "test_layer_structure"), "padding"),
    Bug("lab05", "frozen_parameters_counted", "if p.requires_grad)", ")",
        ("test_count_parameters_counts_trainable_only",), "trainable"),
    Bug("lab05", "adam_recreated_every_epoch",
        "    for _ in range(epochs):\n        model.train()\n",
        "    for _ in range(epochs):\n        optimizer = torch.optim.Adam(model.parameters(), lr=lr)\n        model.train()\n",
        ("test_train_step_is_adam_on_binary_cross_entropy",), "anew every epoch"),
    Bug("lab05", "hard_coded_cuda", "xb, yb = x_train[batch].to(device), y_train[batch].to(device)",
        'xb, yb = x_train[batch].to("cuda" if torch.cuda.is_available() else device), y_train[batch].to(device)',
        ("test_no_hard_coded_device",), "hard-codes"),
    Bug("lab05", "no_image_size_check",
        '    if variant != "gap1" and image_size < 16:\n        raise ValueError(f"variant {variant!r} pools four times by 2: image_size must be >= 16, got {image_size}")\n',
        "", ("test_image_too_small_raises_value_error",), "image_size >= 16"),
    Bug("lab05", "count_parameters_returns_tensor",
        "return int(sum(p.numel() for p in model.parameters() if p.requires_grad))",
        "return torch.tensor(sum(p.numel() for p in model.parameters() if p.requires_grad))",
        ("test_count_parameters_counts_trainable_only",), "Python int"),
    Bug("lab05", "same_order_every_epoch",
        "order = torch.randperm(len(y_train), generator=generator)",
        "order = torch.randperm(len(y_train), generator=torch.Generator().manual_seed(seed))",
        ("test_train_minibatches_in_new_order_each_epoch",), "same order"),
    Bug("lab05", "batch_size_hard_coded",
        "        for start in range(0, len(order), batch_size):\n            batch = order[start : start + batch_size]",
        "        for start in range(0, len(order), 10):\n            batch = order[start : start + 10]",
        ("test_train_minibatches_in_new_order_each_epoch",), "batch_size images per step"),
    Bug("lab05", "shuffle_not_seeded",
        "generator = torch.Generator().manual_seed(seed)", "generator = torch.Generator()\n    generator.seed()",
        ("test_train_minibatches_in_new_order_each_epoch",), "reproduced"),
    Bug("lab05", "predict_proba_in_train_mode",
        "    model.eval()\n    device = next(model.parameters()).device\n    out = []",
        "    device = next(model.parameters()).device\n    out = []",
        ("test_predict_proba_and_evaluate",), "model.eval()"),
    Bug("lab05", "predict_proba_ignores_batch_size",
        "for start in range(0, len(x), batch_size):\n            xb = torch.as_tensor(x[start : start + batch_size], dtype=torch.float32)",
        "for start in range(0, len(x), 50):\n            xb = torch.as_tensor(x[start : start + 50], dtype=torch.float32)",
        ("test_predict_proba_and_evaluate",), "at most batch_size"),
    Bug("lab05", "evaluate_sums_the_loss",
        "loss = nn.functional.binary_cross_entropy(p, y)", 'loss = nn.functional.binary_cross_entropy(p, y, reduction="sum")',
        ("test_predict_proba_and_evaluate", "test_train_history_matches_own_evaluation"), "sum"),
    Bug("lab05", "predict_returns_bool",
        "return (predict_proba(model, x) > threshold).long()", "return predict_proba(model, x) > threshold",
        ("test_predict_thresholds_probabilities",), "int64"),
    # Issue 19: the loss is a docstring promise; an MSE loss passed the Adam check.
    Bug("lab05", "loss_mse", "criterion = nn.BCELoss()", "criterion = nn.MSELoss()",
        ("test_train_loss_is_binary_cross_entropy",), "squared error"),
    # Issue 19, forged how-checks: the probes see what a correct train() would show them, but the
    # work is not done (the forward pre-hooks of the grader's recorders are called by hand, and the
    # real forward pass, if any, goes round them through model.forward). Each earned its points before.
    Bug("lab05", "forged_batches_no_training",
        "            optimizer.zero_grad()\n            loss = criterion(model(xb).reshape(-1), yb)\n"
        "            loss.backward()\n            optimizer.step()\n",
        "            for hook in list(model._forward_pre_hooks.values()):  # the recorders see a batch...\n"
        "                hook(model, (xb,))  # ...but nothing is trained\n",
        ("test_train_puts_model_in_train_mode", "test_train_minibatches_in_new_order_each_epoch"), "did not change"),
    Bug("lab05", "forged_order_trained_in_stored_order",
        "            xb, yb = x_train[batch].to(device), y_train[batch].to(device)\n            optimizer.zero_grad()\n"
        "            loss = criterion(model(xb).reshape(-1), yb)\n",
        "            for hook in list(model._forward_pre_hooks.values()):\n"
        "                hook(model, (x_train[batch],))  # the recorders see the shuffled batch...\n"
        "            xb = x_train[start : start + batch_size].to(device)  # ...training uses the stored order\n"
        "            yb = y_train[start : start + batch_size].to(device)\n            optimizer.zero_grad()\n"
        "            loss = criterion(model.forward(xb).reshape(-1), yb)\n",
        ("test_train_minibatches_in_new_order_each_epoch",), "stored order"),
    Bug("lab05", "forged_train_mode",
        "            optimizer.zero_grad()\n            loss = criterion(model(xb).reshape(-1), yb)\n",
        "            for hook in list(model._forward_pre_hooks.values()):\n"
        "                hook(model.train(), (xb,))  # the recorders see training mode...\n"
        "            model.eval()  # ...the training runs in evaluation mode\n            optimizer.zero_grad()\n"
        "            loss = criterion(model.forward(xb).reshape(-1), yb)\n",
        ("test_train_puts_model_in_train_mode",), "evaluation mode"),
    # Issue 22: randomize_labels (Zhang et al. 2017's random labels).
    Bug("lab05", "random_labels_with_replacement",
        "perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(int(seed)))",
        "perm = torch.randint(len(y), (len(y),), generator=torch.Generator().manual_seed(int(seed)))",
        ("test_randomize_labels_is_a_permutation_keeping_class_counts",), "with replacement"),
    Bug("lab05", "random_labels_drawn_anew", "return y[perm.to(y.device)]",
        "return torch.randint(0, 2, y.shape, generator=torch.Generator().manual_seed(int(seed))).to(y)",
        ("test_randomize_labels_is_a_permutation_keeping_class_counts",), "class counts"),
    Bug("lab05", "random_labels_not_shuffled", "return y[perm.to(y.device)]", "return y[perm.sort().values.to(y.device)]",
        ("test_randomize_labels_is_a_permutation_keeping_class_counts",), "random"),
    Bug("lab05", "random_labels_global_rng",
        "perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(int(seed)))",
        "perm = torch.randperm(len(y))",
        ("test_randomize_labels_same_seed_same_permutation",), "global RNG"),
    Bug("lab05", "random_labels_seed_ignored", "generator=torch.Generator().manual_seed(int(seed)))",
        "generator=torch.Generator().manual_seed(0))",
        ("test_randomize_labels_same_seed_same_permutation",), "ignores its seed"),
    Bug("lab05", "random_labels_shuffled_in_place", "return y[perm.to(y.device)]",
        "y[:] = y[perm.to(y.device)]\n    return y",
        ("test_randomize_labels_does_not_modify_its_input",), "in place"),
    Bug("lab05", "random_labels_no_shape_check",
        '    if y.dim() != 1:\n        raise ValueError(f"y must be one-dimensional (N,) labels, got shape {tuple(y.shape)}")\n',
        "", ("test_randomize_labels_rejects_bad_input",), "one-dimensional"),
]
