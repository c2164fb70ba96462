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
]
