"""What the course's ``keras.Model`` subclasses share: saving their sub-models, and the self-supervised base.

- :class:`SubmodelConfig`: ``get_config`` / ``from_config`` for a model whose constructor takes other
  models (encoder, decoder, generator, projection head...) listed in its ``SUBMODELS`` class attribute, so
  that it survives a ``.keras`` save / load round-trip; :func:`deserialize_submodels` is its loader.
- :class:`SelfSupervisedModel`: the base of SimCLR, MoCo, SimSiam, BYOL and rotation prediction. It owns the
  encoder and the view augmenter, returns the frozen representation from ``call`` (so ``model.predict(x)``
  gives the features the probes use), keeps one ``keras.metrics.Mean`` tracker per name in ``METRICS``
  (exposed through ``metrics`` and updated with :meth:`SelfSupervisedModel.track`), makes two independent
  views per image (:meth:`SelfSupervisedModel.two_views`) and builds its optimizer's variables in
  ``compile``. A subclass writes only its ``compute_loss``.
"""

from __future__ import annotations

import keras

from course_lib.data.augment import allow_jit_on_jax


def deserialize_submodels(config: dict, keys, custom_objects=None) -> dict:
    """Return a copy of a model's ``get_config()`` dict with the sub-models under ``keys`` rebuilt.

    For ``from_config`` of models that take other models as constructor arguments and store them with
    ``keras.saving.serialize_keras_object``. A key whose value is None (an optional sub-model) stays None.

    Args:
        config: the saved config (not modified).
        keys: names of the entries holding serialized sub-models.
        custom_objects: passed to ``keras.saving.deserialize_keras_object``.

    Raises:
        KeyError: a key is missing from ``config``.
    """
    config = dict(config)
    for key in keys:
        if config[key] is not None:
            config[key] = keras.saving.deserialize_keras_object(config[key], custom_objects=custom_objects)
    return config


class SubmodelConfig:
    """Mixin: serialise the sub-models named in ``SUBMODELS`` in ``get_config`` and rebuild them in ``from_config``.

    A subclass lists its model-valued constructor arguments in ``SUBMODELS`` (stored as attributes of the
    same names) and adds its scalar arguments in its own ``get_config``::

        class Autoencoder(SubmodelConfig, keras.Model):
            SUBMODELS = ("encoder", "decoder")
    """

    SUBMODELS: tuple[str, ...] = ()

    def get_config(self):
        config = super().get_config()
        for key in self.SUBMODELS:
            value = getattr(self, key)
            config[key] = None if value is None else keras.saving.serialize_keras_object(value)
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**deserialize_submodels(config, cls.SUBMODELS, custom_objects))


class SelfSupervisedModel(SubmodelConfig, keras.Model):
    """Base of the self-supervised models of Days 07-08 (see the module docstring).

    Subclasses set ``METRICS`` (tracker names, ``"loss"`` first), ``SUBMODELS`` (at least ``"encoder"`` and
    ``"augmenter"``) and implement ``compute_loss(x=None, ...)``, which calls :meth:`track` and returns the loss.

    Args:
        encoder: ``(batch, h, w, c) -> (batch, d)``, e.g. :func:`course_lib.models.encoders.build_encoder`.
        augmenter: a layer/model applied with ``training=True`` to make views, or None (no augmentation).
        seed: stored in the config (subclasses use it for their default augmenter).
    """

    METRICS: tuple[str, ...] = ("loss",)
    SUBMODELS = ("encoder", "augmenter")

    def __init__(self, encoder, augmenter=None, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.augmenter = allow_jit_on_jax(augmenter)  # else no jax.jit for the whole model (see the function)
        self.seed = seed
        self.trackers = [keras.metrics.Mean(name=name) for name in self.METRICS]

    @property
    def metrics(self):
        """The ``keras.metrics.Mean`` trackers, one per name in ``METRICS`` (Keras resets them every epoch)."""
        return list(self.trackers)

    def track(self, **values) -> None:
        """Update the trackers named by the keywords, e.g. ``self.track(loss=loss, std=spread)``.

        Raises:
            KeyError: a name that is not in ``METRICS``.
        """
        by_name = {tracker.name: tracker for tracker in self.trackers}
        for name, value in values.items():
            by_name[name].update_state(value)

    def call(self, images, training=False):
        # The model's output is the frozen representation; the training passes happen in compute_loss.
        return self.encoder(images, training=False)

    def two_views(self, images):
        """Two independent augmented views of every image: the augmenter called twice with ``training=True``.

        Args:
            images: float tensor ``(batch, h, w, c)``, values in [0, 1].

        Returns:
            ``(view1, view2)``: float tensors of ``images``' shape; row ``i`` of both comes from image ``i``.

        Raises:
            TypeError: the model has no augmenter (``augmenter=None``).
        """
        return self.augmenter(images, training=True), self.augmenter(images, training=True)

    def compile(self, *args, **kwargs):
        """``keras.Model.compile``, then build the optimizer's variables for the trainable variables."""
        # Build the optimizer's variables now: created lazily inside the first traced training step, they
        # would make TensorFlow trace the whole step twice, doubling the start-up time.
        super().compile(*args, **kwargs)
        if self.optimizer is not None and not self.optimizer.built:
            self.optimizer.build(self.trainable_variables)

    def compile_from_config(self, config):
        """Re-compile from a saved compile config (``keras.models.load_model`` calls it)."""
        # Loading a saved model re-compiles it with the saved optimizer (its state is restored afterwards).
        self.compile(**keras.saving.deserialize_keras_object(config))

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}
