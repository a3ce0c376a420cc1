"""Unit tests for course_lib.autodiff: gradients on the Keras backend in use (TensorFlow, JAX or PyTorch)."""

import keras
import numpy as np
import pytest
from keras import layers, ops

from course_lib import autodiff


def to_np(x):
    return np.asarray(ops.convert_to_numpy(x), dtype=np.float64)


def test_value_and_grad_of_a_pure_function():
    def fn(params, scale):
        w, unused = params
        return scale * ops.sum(w * w), (w + 1.0,)

    grad_fn = autodiff.value_and_grad(fn)
    w = np.array([1.0, 2.0], "float32")
    (loss, (aux,)), (g_w, g_unused) = grad_fn([w, np.ones((3,), "float32")], 2.0)
    assert np.isclose(float(to_np(loss)), 10.0)
    assert np.allclose(to_np(aux), [2.0, 3.0])
    assert np.allclose(to_np(g_w), [4.0, 8.0])
    assert to_np(g_unused).shape == (3,) and np.all(to_np(g_unused) == 0.0)  # zeros, not None


def test_gradients_of_a_layer_match_the_closed_form():
    keras.utils.set_random_seed(0)
    dense = layers.Dense(1, use_bias=True)
    x = np.random.default_rng(0).normal(size=(5, 3)).astype("float32")
    dense.build((None, 3))
    loss, (g_kernel, g_bias) = autodiff.gradients(lambda: ops.mean(dense(x)), [dense.kernel, dense.bias])
    assert np.allclose(to_np(g_kernel)[:, 0], x.mean(axis=0), atol=1e-6)  # d mean(xW + b) / dW = mean(x)
    assert np.isclose(float(to_np(g_bias)[0]), 1.0)
    assert np.isclose(float(to_np(loss)), float(np.mean(x @ to_np(dense.kernel) + to_np(dense.bias))), atol=1e-5)


def test_gradients_with_aux_and_updates_written_back():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3), layers.BatchNormalization()])
    x = np.random.default_rng(1).normal(loc=2.0, size=(16, 4)).astype("float32")
    moving_mean = model.layers[1].moving_mean
    before = to_np(moving_mean)

    def loss_fn():
        out = model(x, training=True)
        return ops.mean(out ** 2), out

    (loss, out), grads = autodiff.gradients(loss_fn, model.trainable_variables, has_aux=True)
    assert to_np(out).shape == (16, 3) and np.isfinite(float(to_np(loss)))
    assert len(grads) == len(model.trainable_variables)
    assert all(to_np(g).shape == tuple(v.shape) for g, v in zip(grads, model.trainable_variables))
    after = to_np(moving_mean)
    assert not np.allclose(after, before), "the batch-norm statistics updated inside loss_fn are written back"
    keras.utils.set_random_seed(0)
    twin = keras.Sequential([keras.Input((4,)), layers.Dense(3), layers.BatchNormalization()])
    twin(x, training=True)  # the same update, run directly
    assert np.allclose(after, to_np(twin.layers[1].moving_mean), atol=1e-6)


def test_gradients_then_optimizer_step_reduces_the_loss():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), layers.Dense(1)])
    x = np.random.default_rng(2).normal(size=(32, 2)).astype("float32")
    y = ops.convert_to_tensor((x @ np.array([[2.0], [-1.0]], "float32")).astype("float32"))  # a tensor: on
    # PyTorch, tensor - ndarray would hand the tensor to NumPy
    optimizer = keras.optimizers.SGD(0.1)
    loss_fn = lambda: ops.mean((model(x) - y) ** 2)  # noqa: E731
    with autodiff.no_grad():
        first, grads = autodiff.gradients(loss_fn, model.trainable_variables)
        for _ in range(20):
            loss, grads = autodiff.gradients(loss_fn, model.trainable_variables)
            optimizer.apply(grads, model.trainable_variables)
    assert float(to_np(loss)) < 0.2 * float(to_np(first))


def test_run_stateless_records_assignments_without_applying_them():
    variable = keras.Variable(np.zeros((2,), "float32"))
    other = keras.Variable(np.ones((2,), "float32"))

    def step(delta):
        variable.assign(variable + delta)
        return ops.sum(variable)

    result, (new_variable, new_other) = autodiff.run_stateless(step, [variable, other],
                                                               [np.full((2,), 3.0, "float32"), other.value], 1.0)
    assert np.isclose(float(to_np(result)), 8.0)
    assert np.allclose(to_np(new_variable), [4.0, 4.0])
    assert np.allclose(to_np(new_other), [1.0, 1.0])
    assert np.allclose(to_np(variable), [0.0, 0.0]), "the variable itself is not assigned"


def test_no_grad_is_a_context_manager():
    with autodiff.no_grad():
        pass


def test_unknown_backend_is_refused(monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "numpy")
    with pytest.raises(NotImplementedError, match="tensorflow, jax, torch"):
        autodiff.value_and_grad(lambda params: (params[0], ()))
