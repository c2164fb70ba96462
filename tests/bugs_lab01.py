"""Planted bugs for lab 1 (autograd and linear regression)."""

from tests.planted import Bug

BUGS = [
    Bug("lab01", "gradients_not_zeroed", "            k.grad.zero_()\n            d.grad.zero_()\n", "",
        ("test_fit_one_epoch_is_per_sample_gradient_descent", "test_fit_recovers_line"), "not zeroed"),
    Bug("lab01", "sign_error_in_de_db", "de_db = d * 1.0 + c * 1.0", "de_db = d * 1.0 - c * 1.0",
        ("test_graph_backward_matches_autograd",), "de/db"),
    Bug("lab01", "one_path_in_de_db", "de_db = d * 1.0 + c * 1.0", "de_db = c * 1.0",
        ("test_graph_backward_matches_autograd",), "path"),
    Bug("lab01", "gradient_ascent", "k -= lr * k.grad", "k += lr * k.grad",
        ("test_fit_one_epoch_is_per_sample_gradient_descent", "test_fit_recovers_line")),
    Bug("lab01", "hard_coded_cuda", 'x_t = torch.as_tensor(x, dtype=torch.float32).to(device).flatten()',
        'x_t = torch.as_tensor(x, dtype=torch.float32).to("cuda" if torch.cuda.is_available() else device).flatten()',
        ("test_no_hard_coded_device",), ".to(device)"),
    Bug("lab01", "mean_loss_not_divided", "losses[epoch] = total / x_t.numel()", "losses[epoch] = total",
        ("test_fit_one_epoch_is_per_sample_gradient_descent",), "divided"),
    # Contracts of the docstrings (issue: every documented property is checked).
    Bug("lab01", "hand_gradients_by_autograd", "    c, d, _ = graph_forward(a, b)\n    de_da = d * 1.0\n",
        "    return graph_autograd(a, b)\n    c, d, _ = graph_forward(a, b)\n    de_da = d * 1.0\n",
        ("test_graph_backward_matches_autograd",), "without autograd"),
    Bug("lab01", "autograd_in_float32",
        "    a_t = torch.tensor(a, dtype=torch.float64, requires_grad=True)\n"
        "    b_t = torch.tensor(b, dtype=torch.float64, requires_grad=True)\n",
        "    a_t = torch.tensor(a, requires_grad=True)\n    b_t = torch.tensor(b, requires_grad=True)\n",
        ("test_graph_autograd_matches",), "float64"),
    Bug("lab01", "autograd_returns_tensors", "return float(a_t.grad), float(b_t.grad)", "return a_t.grad, b_t.grad",
        ("test_graph_autograd_matches",), "Python float"),
    Bug("lab01", "squared_error_broadcasts", "    if y_pred.shape != y.shape:\n        raise ValueError(", "    if False:\n        raise ValueError(",
        ("test_linear_model_and_squared_error",), "broadcasts"),
    Bug("lab01", "squared_error_not_0d", "return ((y_pred - y) ** 2).sum()", "return ((y_pred - y) ** 2).sum().reshape(1)",
        ("test_linear_model_and_squared_error",), "0-d tensor"),
    Bug("lab01", "fit_accepts_unequal_lengths", "    if x_t.numel() == 0 or x_t.numel() != y_t.numel():\n",
        "    if x_t.numel() == 0:\n", ("test_fit_rejects_bad_data",), "must raise ValueError"),
    Bug("lab01", "losses_in_float32", "losses = np.zeros(epochs, dtype=np.float64)", "losses = np.zeros(epochs, dtype=np.float32)",
        ("test_fit_one_epoch_is_per_sample_gradient_descent",), "float64"),
    # Forged results (issue 19: checks that believe a returned number): each must earn 0 on the check aimed at.
    Bug("lab01", "fit_forged_result", "    x_t = torch.as_tensor(x, dtype=torch.float32).to(device).flatten()\n",
        "    return 2.0, 1.0, np.geomspace(30.0, 1e-9, epochs)\n"
        "    x_t = torch.as_tensor(x, dtype=torch.float32).to(device).flatten()\n",
        ("test_fit_recovers_line",), "gradient descent"),
    Bug("lab01", "fit_closed_form_with_made_up_losses",
        "    x_t = torch.as_tensor(x, dtype=torch.float32).to(device).flatten()\n",
        "    k_ls, d_ls = np.polyfit(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64), 1)\n"
        "    return float(k_ls), float(d_ls), np.geomspace(30.0, 1e-9, epochs)\n"
        "    x_t = torch.as_tensor(x, dtype=torch.float32).to(device).flatten()\n",
        ("test_fit_recovers_line",), "gradient descent"),
    Bug("lab01", "fit_only_raises_value_error",
        "    x_t = torch.as_tensor(x, dtype=torch.float32).to(device).flatten()\n",
        '    raise ValueError("x and y must be non-empty and of equal length")\n'
        "    x_t = torch.as_tensor(x, dtype=torch.float32).to(device).flatten()\n",
        ("test_fit_rejects_bad_data",), "valid data"),
]
