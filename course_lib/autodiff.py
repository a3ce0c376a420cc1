"""Gradients on every Keras backend: the one place where TensorFlow, JAX and PyTorch differ.

Keras 3 runs the same model code on TensorFlow, JAX and PyTorch, but it has no backend-agnostic call that
differentiates a loss: ``fit`` uses each backend's own automatic differentiation inside its default
``train_step``. A custom training step that needs gradients itself (the GAN's alternating updates of Day 06)
uses this module.

- :func:`value_and_grad` is the only function with a branch per backend. It is written in JAX's functional
  style, because JAX can only differentiate functions of their arguments: ``fn(params, ...)`` receives the
  values to differentiate and returns ``(loss, aux)``.

  * TensorFlow: ``tf.GradientTape`` watching the given tensors;
  * JAX: ``jax.value_and_grad(fn, has_aux=True)``, the pattern of the keras.io guide "Customizing what happens
    in fit() with JAX" (F. Chollet, 2023), which differentiates a function calling ``stateless_call``;
  * PyTorch: autograd on fresh leaf tensors and ``loss.backward()`` (the keras.io guide "Customizing what
    happens in fit() with PyTorch" differentiates the parameters themselves and therefore calls
    ``zero_grad()`` first; fresh leaves need no zeroing).

- :func:`gradients` is the stateful convenience a training step uses: ``loss_fn()`` reads Keras variables as
  usual; the values of ``variables`` are substituted inside a ``keras.StatelessScope`` and differentiated with
  :func:`value_and_grad`. What ``loss_fn`` updates on the way (batch-normalisation statistics, dropout seeds)
  is written back to those variables afterwards, and an enclosing stateless scope is respected.

- :func:`run_stateless` runs stateful code (``variable.assign``, ``optimizer.apply``, ``metric.update_state``)
  as a pure function of variable values: on the JAX backend a model's ``train_step(state, data)`` must
  return the new values instead of assigning them, and a ``StatelessScope`` records the assignments.

- :func:`no_grad` is ``torch.no_grad()`` on PyTorch (a training step's assignments must not extend an autograd
  graph) and does nothing elsewhere.

So a training step written with :func:`gradients` and ``optimizer.apply`` runs unchanged on the three
backends; :class:`course_lib.models.gan.DCGAN` is the example.
"""

from __future__ import annotations

import contextlib

import keras

__all__ = ["value_and_grad", "gradients", "run_stateless", "no_grad"]

BACKENDS = ("tensorflow", "jax", "torch")


def value_and_grad(fn):
    """Differentiate ``fn(params, *args, **kwargs) -> (loss, aux)`` with respect to ``params``, on any backend.

    Args:
        fn: a function whose first argument is a list of tensors (for example the values of
            ``model.trainable_variables``) and which returns ``(scalar loss, aux)``, ``aux`` being any nest of
            tensors (updated non-trainable values, logits, ...; ``()`` if there is nothing). It must not assign
            to Keras variables (call models with ``Layer.stateless_call``, or read the values through a
            ``keras.StatelessScope`` as :func:`gradients` does): on JAX it is traced as a pure function.

    Returns:
        ``grad_fn(params, *args, **kwargs) -> ((loss, aux), grads)``: ``grads`` is a list aligned with
        ``params``, of the same shapes and dtypes (zeros, never ``None``, where the loss does not depend on a
        value). On PyTorch ``loss`` and ``aux`` come back detached from the autograd graph.

    Raises:
        NotImplementedError: a Keras backend other than tensorflow, jax and torch.

    Example::

        grad_fn = value_and_grad(lambda w: (ops.sum(w[0] ** 2), ()))
        (loss, _), (g,) = grad_fn([np.array([1.0, 2.0], "float32")])     # loss 5, g = [2, 4]
    """
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        def jax_grad_fn(params, *args, **kwargs):
            return jax.value_and_grad(fn, has_aux=True)(list(params), *args, **kwargs)

        return jax_grad_fn

    if backend == "tensorflow":
        import tensorflow as tf  # TensorFlow's autodiff: the one TensorFlow-specific branch

        def tf_grad_fn(params, *args, **kwargs):
            params = [tf.convert_to_tensor(p) for p in params]
            with tf.GradientTape() as tape:
                tape.watch(params)
                loss, aux = fn(params, *args, **kwargs)
            grads = tape.gradient(loss, params)
            return (loss, aux), [tf.zeros_like(p) if g is None else g for p, g in zip(params, grads)]

        return tf_grad_fn

    if backend == "torch":
        import torch

        def torch_grad_fn(params, *args, **kwargs):
            leaves = [torch.as_tensor(keras.ops.convert_to_tensor(p)).detach().requires_grad_(True)
                      for p in params]
            with torch.enable_grad():
                loss, aux = fn(leaves, *args, **kwargs)
                grads = torch.autograd.grad(loss, leaves, allow_unused=True)
            grads = [torch.zeros_like(leaf) if g is None else g for leaf, g in zip(leaves, grads)]
            detach = lambda t: t.detach() if isinstance(t, torch.Tensor) else t  # noqa: E731
            return (loss.detach(), keras.tree.map_structure(detach, aux)), grads

        return torch_grad_fn

    raise NotImplementedError(f"value_and_grad supports the backends {', '.join(BACKENDS)}, not {backend!r}")


class _RecordingScope(keras.StatelessScope):
    """A ``StatelessScope`` that starts from the enclosing scope's values and remembers what was assigned."""

    def __init__(self, overrides=()):
        super().__init__()
        outer = _current_scope()
        if outer is not None:  # a nested scope does not look up its parent: copy the values it holds
            self.state_mapping.update(outer.state_mapping)
        self.assigned: dict[int, keras.Variable] = {}
        for variable, value in overrides:
            self.state_mapping[id(variable)] = value

    def add_update(self, update):
        variable, _ = update
        self.assigned[id(variable)] = variable
        super().add_update(update)


def _current_scope():
    from keras.src.backend.common.stateless_scope import get_stateless_scope

    return get_stateless_scope()


def gradients(loss_fn, variables, has_aux: bool = False):
    """Evaluate ``loss_fn()`` and its gradients with respect to the Keras ``variables``, on any backend.

    The stateful counterpart of :func:`value_and_grad` for training steps: ``loss_fn`` calls models as usual
    (``discriminator(images, training=True)``); inside, the values of ``variables`` are replaced by the tensors
    being differentiated. Variables that ``loss_fn`` updates (batch-normalisation moving statistics, the seed
    of a dropout layer) receive their new values after the call, so the result is the same as running
    ``loss_fn()`` once. Nothing is updated with the gradients: apply them with an optimizer
    (``optimizer.apply(grads, variables)``).

    Args:
        loss_fn: a callable without arguments returning a scalar loss tensor, or ``(loss, aux)`` with
            ``has_aux=True`` (``aux`` any nest of tensors, e.g. the logits, returned as computed).
        variables: list of ``keras.Variable`` to differentiate with respect to (e.g.
            ``model.trainable_variables``).
        has_aux: whether ``loss_fn`` returns ``(loss, aux)``.

    Returns:
        ``(loss, grads)``, or ``((loss, aux), grads)`` with ``has_aux=True``; ``grads`` is a list of tensors
        aligned with ``variables`` (zeros where the loss does not depend on a variable).

    Raises:
        NotImplementedError: a Keras backend other than tensorflow, jax and torch.
    """
    variables = list(variables)
    assigned: list[keras.Variable] = []

    def pure(values):
        with _RecordingScope(zip(variables, values)) as scope:
            out = loss_fn()
        loss, aux = out if has_aux else (out, ())
        assigned[:] = list(scope.assigned.values())
        return loss, (aux, [scope.get_current_value(v) for v in assigned])

    (loss, (aux, new_values)), grads = value_and_grad(pure)([v.value for v in variables])
    for variable, value in zip(assigned, new_values):
        variable.assign(value)
    return ((loss, aux), grads) if has_aux else (loss, grads)


def run_stateless(fn, variables, values, *args, **kwargs):
    """Run stateful code as a pure function: ``fn(*args, **kwargs)`` with ``variables`` set to ``values``.

    Inside, every read of one of ``variables`` sees its value from ``values`` and every assignment (an
    optimizer step, a metric update, a seed generator drawing noise) is recorded instead of applied. This is
    what a model's ``train_step(state, data) -> (logs, state)`` needs on the JAX backend, whose compiled step
    receives the variables' values as arguments and must return the new ones.

    Args:
        fn: the stateful callable.
        variables: list of ``keras.Variable``.
        values: their values (tensors), aligned with ``variables``.
        *args, **kwargs: passed to ``fn``.

    Returns:
        ``(result, new_values)``: ``fn``'s result and the values of ``variables`` after it (a value is the one
        given when ``fn`` did not assign the variable).
    """
    variables = list(variables)
    with _RecordingScope(zip(variables, values)) as scope:
        result = fn(*args, **kwargs)
    return result, [scope.get_current_value(v) for v in variables]


def no_grad():
    """``torch.no_grad()`` on the PyTorch backend, a context manager that does nothing on the others.

    A training step assigns new values to variables; on PyTorch those assignments must not be recorded by
    autograd (:func:`gradients` re-enables it where it differentiates).
    """
    if keras.backend.backend() == "torch":
        import torch

        return torch.no_grad()
    return contextlib.nullcontext()
