"""Planted bugs for lab 2 (backpropagation by hand)."""

from tests.planted import Bug

BUGS = [
    Bug("lab02", "sign_error_in_delta_L", "delta = (activations[-1] - y) * sigmoid_prime(zs[-1]) / n",
        "delta = (y - activations[-1]) * sigmoid_prime(zs[-1]) / n",
        ("test_backward_matches_autograd", "test_backward_batch_of_one", "test_train_two_moons"), "sign"),
    Bug("lab02", "missing_sigma_prime_in_one_layer",
        "delta = (delta @ params[l][0]) * sigmoid_prime(zs[l - 1])",
        "delta = (delta @ params[l][0]) * (sigmoid_prime(zs[l - 1]) if l != 1 else 1.0)",
        ("test_backward_matches_autograd",), "sigma'(z^1)"),
    Bug("lab02", "dW_transposed", "grads[l] = (delta.T @ activations[l], delta.sum(axis=0))",
        "grads[l] = (activations[l].T @ delta, delta.sum(axis=0))",
        ("test_backward_matches_autograd", "test_backward_batch_of_one"), "transposed"),
    Bug("lab02", "sum_instead_of_mean", "* sigmoid_prime(zs[-1]) / n", "* sigmoid_prime(zs[-1])",
        ("test_backward_matches_autograd",), "1/N"),
    Bug("lab02", "cost_sum_instead_of_mean", "return float(0.5 * np.sum((y - a_L) ** 2) / a_L.shape[0])",
        "return float(0.5 * np.sum((y - a_L) ** 2))", ("test_quadratic_cost",), "divided by N"),
    Bug("lab02", "sigmoid_prime_wrong", "return s * (1.0 - s)", "return s", ("test_sigmoid_and_sigmoid_prime",)),
    Bug("lab02", "init_too_large", "W = rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)",
        "W = 0.0 * rng.standard_normal((n_out, n_in))", ("test_init_params_shapes_and_seed",), "symmetry"),
]
