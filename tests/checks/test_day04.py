"""Unit tests for course_lib.checks.day04: the notebook's reference solutions pass the self-checks; the checks
fail (not error) typical wrong answers, say "todo" for an exercise not attempted and "reference" for an answer
that calls course_lib's own implementation; and no check changes the notebook's random state."""

import json
import random
import types
from pathlib import Path

import keras
import numpy as np
from keras import layers, ops

from course_lib import backends
from course_lib.checks import day04
from course_lib.data import augment
from course_lib.models import autoencoders

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "solutions" / "day04_autoencoders.ipynb"


def digits(n_train=400, n_test=150):
    from sklearn.datasets import load_digits

    x = (load_digits().images / 16.0).astype("float32")[..., None]
    return x[:n_train], x[n_train:n_train + n_test]


def notebook_solutions(x_train=None, x_test=None, hidden=(32,)):
    """Execute the solution cells of the Day 04 notebook's exercises, with the notebook's names they use."""
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    namespace = {"np": np, "keras": keras, "layers": layers, "ops": ops, "autoencoders": autoencoders,
                 "SEED": 0, "HIDDEN": hidden, "STEPS_PER_EXECUTION": backends.steps_per_execution(16), "x_train": x_train, "x_test": x_test,
                 "ds": types.SimpleNamespace(image_shape=(8, 8, 1))}
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution") and cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), meta["grade_id"], "exec"), namespace)  # noqa: S102
    namespace["build"], namespace["train"] = namespace["build_autoencoder"], namespace["train_autoencoder"]
    return namespace


def todo(*args, **kwargs):
    raise NotImplementedError()


# --- Exercise 4.1: build and train ----------------------------------------------------------------------------

def test_build_check_passes_the_solution_and_fails_typical_mistakes():
    ns = notebook_solutions()
    assert day04.check_build_autoencoder(ns["build_autoencoder"]).status == "pass"

    def make(flatten=True, code_activation=None, output_activation="sigmoid"):
        def build(input_shape, latent_dim, hidden):
            image = keras.Input(input_shape)
            h = layers.Flatten()(image) if flatten else image
            for width in hidden:
                h = layers.Dense(width, activation="relu")(h)
            encoder = keras.Model(image, layers.Dense(latent_dim, activation=code_activation)(h))
            code = keras.Input(encoder.output.shape[1:])
            h = code
            for width in reversed(hidden):
                h = layers.Dense(width, activation="relu")(h)
            out = layers.Dense(int(np.prod(input_shape)), activation=output_activation)(h)
            if flatten:
                out = layers.Reshape(input_shape)(out)
            return encoder, keras.Model(code, out)
        return build

    no_flatten = day04.check_build_autoencoder(make(flatten=False))
    assert no_flatten.status == "fail" and "codes of shape" in no_flatten.message
    relu_code = day04.check_build_autoencoder(make(code_activation="relu"))
    assert relu_code.status == "fail" and "no activation" in relu_code.message
    linear_out = day04.check_build_autoencoder(make(output_activation=None))
    assert linear_out.status == "fail" and "[0, 1]" in linear_out.message
    assert day04.check_build_autoencoder(todo).status == "todo"

    def calls_the_library(input_shape, latent_dim, hidden):
        model = autoencoders.build_dense_autoencoder(input_shape, latent_dim, hidden)
        return model.encoder, model.decoder

    assert day04.check_build_autoencoder(calls_the_library).status == "reference"


def test_train_check_passes_the_solution_and_fails_typical_mistakes():
    ns = notebook_solutions()
    result = day04.check_train_autoencoder(ns["train_autoencoder"])
    assert result.status == "pass", result.message

    def make(loss="binary_crossentropy", decay=True, pass_batch=True):
        def train(model, x, epochs, batch_size=128, learning_rate=4e-3):
            steps = epochs * int(np.ceil(len(x) / batch_size))
            lr = keras.optimizers.schedules.CosineDecay(learning_rate, steps) if decay else learning_rate
            model.compile(keras.optimizers.Adam(lr), loss, jit_compile=False)
            return model.fit(x, x, epochs=epochs, batch_size=batch_size if pass_batch else None, verbose=0)
        return train

    mse = day04.check_train_autoencoder(make(loss="mse"))
    assert mse.status == "fail" and "squared error" in mse.message
    constant = day04.check_train_autoencoder(make(decay=False))
    assert constant.status == "fail" and "learning rate" in constant.message
    default_batch = day04.check_train_autoencoder(make(pass_batch=False))
    assert default_batch.status == "fail" and "batch_size" in default_batch.message
    assert day04.check_train_autoencoder(todo).status == "todo"

    def calls_the_library(model, x, epochs, batch_size=128, learning_rate=4e-3):
        return autoencoders.fit_autoencoder(model, x, epochs, batch_size, learning_rate)

    assert day04.check_train_autoencoder(calls_the_library).status == "reference"


# --- Exercise 4.2: the noise --------------------------------------------------------------------------------

def test_noise_check_passes_the_solution_and_fails_typical_mistakes():
    ns = notebook_solutions()
    result = day04.check_add_noise(ns["add_gaussian_noise"])
    assert result.status == "pass", result.message
    assert day04.check_add_noise(augment.gaussian_noise).status == "reference"

    def variance(x, std, seed):
        return ops.clip(x + keras.random.normal(ops.shape(x), stddev=std ** 2, seed=seed), 0.0, 1.0)

    def unclipped(x, std, seed):
        return x + keras.random.normal(ops.shape(x), stddev=std, seed=seed)

    def numpy_noise(x, std, seed):  # fixed NumPy noise: the same image every call
        x = np.asarray(ops.convert_to_numpy(x))
        return np.clip(x + std * np.random.default_rng(0).standard_normal(x.shape), 0, 1).astype("float32")

    assert day04.check_add_noise(variance).status == "fail"
    assert day04.check_add_noise(unclipped).status == "fail"
    fixed = day04.check_add_noise(numpy_noise)
    assert fixed.status == "fail" and "new noise" in fixed.message
    assert day04.check_add_noise(todo).status == "todo"

    def calls_the_library(x, std, seed):
        return augment.gaussian_noise(x, std, seed)

    assert day04.check_add_noise(calls_the_library).status == "reference"


# --- Exercise 4.3: the code-size investigation -------------------------------------------------------------

def test_code_size_check_passes_the_solution_and_fails_typical_mistakes():
    x_train, x_test = digits()
    ns = notebook_solutions(x_train, x_test)
    sizes = (2, 6)

    def train(model, x, epochs):  # a faster schedule for these 400 images
        return autoencoders.fit_autoencoder(model, x, epochs, batch_size=32)

    ns["train"] = train
    result = day04.check_code_size_experiment(lambda: ns["code_size_experiment"](sizes, 30), sizes, x_train, x_test,
                                              largest_gain_fn=ns["largest_gain"])
    assert result.status == "pass", result.message
    results = day04.code_size_results()
    assert list(results) == list(sizes) and ns["largest_gain"](results) in sizes

    honest = {k: dict(v) for k, v in results.items()}
    inverted = {k: {**v, "ratio": v["pca_mse"] / v["ae_mse"]} for k, v in honest.items()}
    assert day04.check_code_size_experiment(lambda: inverted, sizes, x_train, x_test).status == "fail"
    wrong_pca = {k: {**v, "pca_mse": v["pca_mse"] * 1.5, "ratio": v["ae_mse"] / (v["pca_mse"] * 1.5)}
                 for k, v in honest.items()}
    wrong = day04.check_code_size_experiment(lambda: wrong_pca, sizes, x_train, x_test)
    assert wrong.status == "fail" and "PCA" in wrong.message
    missing = day04.check_code_size_experiment(lambda: {2: honest[2]}, sizes, x_train, x_test)
    assert missing.status == "fail"
    worst = day04.check_code_size_experiment(lambda: honest, sizes, x_train, x_test,
                                             largest_gain_fn=lambda r: max(r, key=lambda k: r[k]["ratio"]))
    assert worst.status == "fail" or len({round(v["ratio"], 9) for v in honest.values()}) == 1
    assert day04.check_code_size_experiment(todo, sizes, x_train, x_test).status == "todo"

    def calls_the_library():
        return autoencoders.code_size_study(ns["build"], train, x_train, x_test, sizes, 2, hidden=(8,))

    assert day04.check_code_size_experiment(calls_the_library, sizes, x_train, x_test).status == "reference"


# --- the random state of the notebook ------------------------------------------------------------------------

def test_checks_leave_the_global_random_state_alone():
    ns = notebook_solutions()
    keras.utils.set_random_seed(123)
    expected = (random.random(), np.random.random(), float(ops.convert_to_numpy(keras.random.normal(()))))
    keras.utils.set_random_seed(123)
    day04.check_build_autoencoder(ns["build_autoencoder"])
    day04.check_train_autoencoder(ns["train_autoencoder"])
    day04.check_add_noise(ns["add_gaussian_noise"])
    after = (random.random(), np.random.random(), float(ops.convert_to_numpy(keras.random.normal(()))))
    assert after == expected
