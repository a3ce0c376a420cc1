"""Unit tests for course_lib.backends: backend / devices resolution, device discovery, data parallelism, to_numpy.

The tests run on whatever backend pytest runs on (``KERAS_BACKEND``); where the expected result depends on it, the
assertion says so. The two-device test starts a JAX process of its own with two simulated CPU devices.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

from course_lib import backends
from course_lib.backends import configure_devices, resolve_backend, resolve_devices, to_numpy
from course_lib.config import ConfigError
from course_lib.training import reset_seed_generators

BACKEND = keras.backend.backend()
PACKAGE_PARENT = Path(backends.__file__).resolve().parents[1]  # the course_lib under test, for child processes


@pytest.fixture(autouse=True)
def _no_distribution():
    yield
    keras.distribution.set_distribution(None)  # whatever a test set up, the next one starts on one device


# --- resolve_backend / resolve_devices ---------------------------------------------------------------

def test_resolve_backend(monkeypatch):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert resolve_backend() == "tensorflow"
    monkeypatch.setenv("KERAS_BACKEND", " JAX ")
    assert resolve_backend() == "jax"
    assert resolve_backend("torch") == "torch"  # an argument wins over the environment
    monkeypatch.setenv("KERAS_BACKEND", "")
    assert resolve_backend() == "tensorflow"


def test_resolve_backend_unknown(monkeypatch):
    with pytest.raises(ConfigError) as info:
        resolve_backend("mxnet")
    message = str(info.value)
    assert "'mxnet'" in message and all(name in message for name in backends.BACKENDS)
    monkeypatch.setenv("KERAS_BACKEND", "theano")
    with pytest.raises(ConfigError, match="theano.*KERAS_BACKEND"):
        resolve_backend()


def test_resolve_devices(monkeypatch):
    assert resolve_devices() == "one"
    monkeypatch.setenv("COURSE_DEVICES", "All")
    assert resolve_devices() == "all"
    assert resolve_devices("one") == "one"
    with pytest.raises(ConfigError, match="'several'.*COURSE_DEVICES"):
        resolve_devices("several")


def test_backend_installed():
    assert backends.backend_installed(BACKEND)  # the one running these tests
    assert backends.backend_installed("tensorflow")  # a base dependency
    assert BACKEND in backends.installed_backends()
    with pytest.raises(ConfigError):
        backends.backend_installed("mxnet")


# --- devices ----------------------------------------------------------------------------------------

def test_list_devices():
    devices = backends.list_devices()
    assert devices and all(isinstance(d, str) for d in devices)
    kind, index = devices[0].split(":")
    assert kind in {"cpu", "gpu", "tpu", "cuda"} and index.isdigit()
    if BACKEND != "torch":  # the course reports what Keras' distribution API sees
        assert devices == [str(d) for d in keras.distribution.list_devices()]


def test_configure_one_device():
    placement = configure_devices("one")
    assert placement.used == placement.found[:1]
    assert placement.description == "one device"
    assert keras.distribution.distribution() is None


def test_configure_all_devices_on_this_machine():
    placement = configure_devices("all")
    if BACKEND == "jax" and len(placement.found) > 1:
        assert placement.used == placement.found
        assert isinstance(keras.distribution.distribution(), keras.distribution.DataParallel)
        assert placement.description.startswith(f"data-parallel over {len(placement.found)} devices")
    else:
        assert placement.used == placement.found[:1]
        assert keras.distribution.distribution() is None
        reason = "needs the JAX backend" if BACKEND != "jax" else "only one device found"
        assert placement.description.startswith("one device (") and reason in placement.description


def test_configure_resets_an_earlier_distribution():
    if BACKEND == "jax":
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=backends.list_devices()))
    else:
        keras.distribution.set_distribution(object())  # any value: "one" must clear it
    configure_devices("one")
    assert keras.distribution.distribution() is None


# --- to_numpy ---------------------------------------------------------------------------------------

def test_to_numpy_keeps_numpy_arrays_and_their_dtype():
    x = np.arange(6, dtype=np.float64).reshape(2, 3)
    assert to_numpy(x) is x  # no copy, no float32 detour through a backend tensor
    assert to_numpy([1.5, 2.5]).dtype == np.float64
    assert to_numpy(x, dtype=np.float32).dtype == np.float32
    assert to_numpy(3).shape == ()


def test_to_numpy_converts_model_outputs_and_variables():
    layer = keras.layers.Dense(2, kernel_initializer="ones")
    out = layer(np.ones((3, 4), np.float32))  # on PyTorch a tensor that requires grad: np.asarray would raise
    converted = to_numpy(out)
    assert isinstance(converted, np.ndarray) and converted.shape == (3, 2)
    np.testing.assert_allclose(converted, 4.0)
    kernel = to_numpy(layer.kernel, dtype=np.float64)
    assert kernel.dtype == np.float64 and kernel.shape == (4, 2)
    np.testing.assert_array_equal(to_numpy(keras.ops.arange(3)), [0, 1, 2])


def test_seed_unseeded_dropout_makes_dropout_masks_repeat():
    layer = keras.layers.Dropout(0.5)   # no seed, as keras_hub creates its dropout layers
    x = np.ones((4, 64), np.float32)
    masks = []
    for _ in range(2):
        backends.seed_unseeded_dropout(7)
        reset_seed_generators(layer, 7)   # TensorFlow and JAX: the layer's own generator
        masks.append(to_numpy(layer(x, training=True)))
    np.testing.assert_array_equal(masks[0], masks[1])
    assert 0 < (masks[0] == 0).mean() < 1   # it did drop


# --- setup prints the backend and the devices ----------------------------------------------------------

def test_setup_reports_backend_and_devices(capsys, monkeypatch):
    from course_lib.config import setup

    monkeypatch.setenv("COURSE_DEVICES", "all")
    cfg = setup("quick", "digits", 0)
    out = capsys.readouterr().out
    found = backends.list_devices()
    assert cfg.backend == BACKEND and f"on {BACKEND} |" in out
    assert f"devices found: {', '.join(found)}; training on " in out
    assert cfg.devices == (tuple(found) if BACKEND == "jax" and len(found) > 1 else tuple(found[:1]))
    setup("quick", "digits", 0, devices="one", verbose=False)
    assert keras.distribution.distribution() is None


# --- two simulated devices train like one (JAX, DataParallel) ------------------------------------------

STEPS, BATCH = 6, 32

CHILD = textwrap.dedent(f"""
    import json
    import keras
    import numpy as np
    from course_lib import setup

    def train(devices):
        cfg = setup("quick", "digits", 0, verbose=False, devices=devices)  # seeds, then sets the distribution
        rng = np.random.default_rng(0)
        x = rng.normal(size=({STEPS * BATCH}, 8, 8, 1)).astype("float32")
        y = rng.integers(0, 3, size=({STEPS * BATCH},))
        model = keras.Sequential([
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(4, 3, padding="same", use_bias=False),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.2, seed=1),
            keras.layers.Dense(3),
        ])
        start = [keras.ops.convert_to_numpy(w) for w in model.weights]
        model.compile(optimizer=keras.optimizers.Adam(1e-2),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        history = model.fit(x, y, batch_size={BATCH}, epochs=1, shuffle=False, verbose=0)
        placed_on = len(model.weights[0].value.sharding.device_set)
        weights = [keras.ops.convert_to_numpy(w) for w in model.weights]
        moved = max(float(np.max(np.abs(a - b))) for a, b in zip(start, weights))
        return list(cfg.devices), placed_on, weights, float(history.history["loss"][-1]), moved

    assert keras.backend.backend() == "jax"
    one = train("one")
    two = train("all")
    diffs = [float(np.max(np.abs(a - b))) for a, b in zip(one[2], two[2])]
    print(json.dumps({{"devices_one": one[0], "devices_all": two[0], "placed_on": [one[1], two[1]],
                      "max_abs_diff": max(diffs), "per_weight": diffs,
                      "allclose": all(np.allclose(a, b, rtol=1e-4, atol=1e-5) for a, b in zip(one[2], two[2])),
                      "loss_one": one[3], "loss_all": two[3], "moved": one[4]}}))
""")


def test_two_simulated_devices_train_like_one(tmp_path):
    """``setup(devices="all")`` on two simulated CPU devices: after 6 steps of ``fit`` (batch norm, dropout, Adam),
    the weights equal those trained on one device within float32 rounding (rtol 1e-4, atol 1e-5)."""
    if not backends.backend_installed("jax"):
        pytest.skip("DataParallel is tested on the JAX backend, and jax is not installed here "
                    '(pip install -e ".[jax]")')
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURSE_")}
    env.update(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=2",
               PYTHONPATH=os.pathsep.join(p for p in [str(PACKAGE_PARENT), env.get("PYTHONPATH", "")] if p))
    child = subprocess.run([sys.executable, "-c", CHILD], env=env, cwd=tmp_path, capture_output=True, text=True,
                           timeout=900)
    assert child.returncode == 0, child.stderr[-3000:]
    result = json.loads(child.stdout.strip().splitlines()[-1])
    print(json.dumps(result))  # shown with pytest -s: the figures of the check
    assert result["devices_one"] == ["cpu:0"] and result["devices_all"] == ["cpu:0", "cpu:1"]
    assert result["placed_on"] == [1, 2]  # the variables really live on both devices
    assert result["moved"] > 0.01  # the weights did train
    assert result["allclose"], f"weights differ by up to {result['max_abs_diff']:.3g}"
    assert result["loss_all"] == pytest.approx(result["loss_one"], abs=1e-4)
