"""Model builders and ``keras.Model`` subclasses of the course, one module per family.

Every custom layer and model is registered with ``keras.saving.register_keras_serializable(package="course_lib")``
and survives a ``.keras`` save / load round-trip.
"""
