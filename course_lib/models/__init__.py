"""Model builders and ``keras.Model`` subclasses of the course, one module per family.

Every custom layer and model is registered with ``keras.saving.register_keras_serializable(package="course_lib")``
and survives a ``.keras`` save / load round-trip.
"""


def deserialize_submodels(config: dict, keys, custom_objects=None) -> dict:
    """Return a copy of a model's ``get_config()`` dict with the sub-models under ``keys`` rebuilt.

    For ``from_config`` of models that take other models (encoder, decoder, generator...) as
    constructor arguments and store them with ``keras.saving.serialize_keras_object``.

    Args:
        config: the saved config (not modified).
        keys: names of the entries holding serialized sub-models.
        custom_objects: passed to ``keras.saving.deserialize_keras_object``.

    Raises:
        KeyError: a key is missing from ``config``.
    """
    import keras

    config = dict(config)
    for key in keys:
        config[key] = keras.saving.deserialize_keras_object(config[key], custom_objects=custom_objects)
    return config
