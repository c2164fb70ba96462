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
]
