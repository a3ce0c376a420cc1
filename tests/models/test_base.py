"""Unit tests for course_lib.models.base: sub-model (de)serialisation and the self-supervised base model."""

import json

import keras
import numpy as np
import pytest
from keras import ops

from course_lib.data.augment import build_augmenter
from course_lib.models.base import SelfSupervisedModel, SubmodelConfig, deserialize_submodels


@keras.saving.register_keras_serializable(package="course_lib_tests")
class Stack(SubmodelConfig, keras.Model):
    """``scale * second(first(x))``; ``second`` is optional (a model that takes models and a scalar)."""

    SUBMODELS = ("first", "second")

    def __init__(self, first, second=None, scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.first, self.second, self.scale = first, second, float(scale)

    def call(self, x, training=False):
        y = self.first(x, training=training)
        return self.scale * (y if self.second is None else self.second(y, training=training))

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


@keras.saving.register_keras_serializable(package="course_lib_tests")
class ViewDistance(SelfSupervisedModel):
    """The smallest subclass: the squared distance between the two views' representations."""

    METRICS = ("loss", "spread")

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        view1, view2 = self.two_views(x)
        z1, z2 = self.encoder(view1, training=training), self.encoder(view2, training=training)
        loss = ops.mean(ops.sum(ops.square(z1 - z2), axis=1))
        self.track(loss=loss, spread=ops.mean(ops.std(z1, axis=0)))
        return loss


def dense(n_in, n_out, name):
    return keras.Sequential([keras.Input((n_in,)), keras.layers.Dense(n_out)], name=name)


def images(n=16, seed=0):
    return np.random.default_rng(seed).uniform(size=(n, 8, 8, 1)).astype("float32")


# --- SubmodelConfig / deserialize_submodels -------------------------------------------------------

def test_submodel_config_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    model = Stack(dense(3, 4, "first"), dense(4, 2, "second"), scale=2.0)
    x = np.random.default_rng(0).normal(size=(5, 3)).astype("float32")
    expected = ops.convert_to_numpy(model(x))
    config = model.get_config()
    assert config["scale"] == 2.0
    assert config["first"]["class_name"] == "Sequential" and config["second"]["config"]["name"] == "second"
    json.dumps(config)  # every sub-model is stored as a serialisable dict
    rebuilt = Stack.from_config(config)
    assert isinstance(rebuilt.first, keras.Sequential) and rebuilt.first is not model.first
    assert [layer.units for layer in rebuilt.second.layers] == [2] and rebuilt.scale == 2.0
    path = tmp_path / "stack.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is Stack
    np.testing.assert_allclose(ops.convert_to_numpy(loaded(x)), expected, rtol=1e-6)


def test_optional_submodel_stays_none():
    config = Stack(dense(3, 4, "first")).get_config()
    assert config["second"] is None
    assert Stack.from_config(config).second is None


def test_deserialize_submodels_returns_a_copy_and_needs_every_key():
    config = Stack(dense(3, 4, "first")).get_config()
    rebuilt = deserialize_submodels(config, ["first", "second"])
    assert isinstance(rebuilt["first"], keras.Model) and rebuilt["second"] is None
    assert isinstance(config["first"], dict)  # the saved config is not modified
    with pytest.raises(KeyError):
        deserialize_submodels(config, ["first", "third"])


# --- SelfSupervisedModel -------------------------------------------------------------------------

def test_track_updates_the_named_trackers_that_metrics_lists(small_encoder):
    model = ViewDistance(small_encoder())
    assert [metric.name for metric in model.metrics] == ["loss", "spread"]
    model.track(loss=1.0, spread=4.0)
    model.track(loss=3.0)
    assert {m.name: float(ops.convert_to_numpy(m.result())) for m in model.metrics} == {"loss": 2.0, "spread": 4.0}
    with pytest.raises(KeyError):
        model.track(accuracy=1.0)


def test_base_gives_the_representation_two_views_compile_fit_and_config(small_encoder, tmp_path):
    keras.utils.set_random_seed(0)
    model = ViewDistance(small_encoder(), augmenter=build_augmenter((8, 8, 1), seed=0), seed=3)
    x = images()
    np.testing.assert_allclose(ops.convert_to_numpy(model(x)),
                               ops.convert_to_numpy(model.encoder(x, training=False)), rtol=1e-6)
    view1, view2 = (ops.convert_to_numpy(v) for v in model.two_views(x))
    assert view1.shape == view2.shape == x.shape and not np.allclose(view1, view2)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    assert model.optimizer.built  # built in compile, not inside the first traced step
    history = model.fit(x, epochs=2, batch_size=8, verbose=0).history
    assert set(history) == {"loss", "spread"} and np.all(np.isfinite(history["loss"]))
    assert model.get_config()["seed"] == 3
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert type(loaded) is ViewDistance and loaded.seed == 3
    np.testing.assert_allclose(ops.convert_to_numpy(loaded(x)), ops.convert_to_numpy(model(x)), rtol=1e-5, atol=1e-6)
