"""Where the backends differ in speed: one training step and one forward pass, convolutional and dense.

Times, on the backend in use (``KERAS_BACKEND``), the three pieces of work the image days are made of:

- a training step of the course's 28x28 convolutional encoder (``encoders.build_encoder28``, Days 07, 08 and 10)
  with a softmax layer, batch 128 (forward, backward through the convolutions, Adam);
- the same network's forward pass (``predict``), batch 256;
- a training step of a dense network (784 -> 512 -> 512 -> 10), batch 128.

Each is timed after one warm-up call (compilation excluded), ``steps_per_execution`` as the course uses it
(:func:`course_lib.backends.steps_per_execution`). Random inputs: only the time is measured.

    KERAS_BACKEND=jax python benchmarks/train_step.py [--images 2048] [--epochs 3]

Run it on an otherwise idle machine, once per backend, and compare the lines.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _seconds_per_call(fn, calls: int) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) / calls


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2048, help="images per timed epoch (default 2048)")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs of each training run (default 3)")
    args = parser.parse_args(argv)

    import keras

    from course_lib.backends import steps_per_execution
    from course_lib.models import encoders

    n, epochs, train_batch, predict_batch = args.images, args.epochs, 128, 256
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(n, 28, 28, 1)).astype("float32")
    y = rng.integers(0, 10, n)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    keras.utils.set_random_seed(0)

    encoder = encoders.build_encoder28((28, 28, 1), **encoders.ENCODER28_DEFAULTS)
    inputs = keras.Input((28, 28, 1))
    conv = keras.Model(inputs, keras.layers.Dense(10)(encoder(inputs)))
    conv.compile("adam", loss, steps_per_execution=steps_per_execution(16))
    conv.fit(x[:2 * train_batch], y[:2 * train_batch], batch_size=train_batch, verbose=0)   # warm-up
    conv_train = _seconds_per_call(lambda: conv.fit(x, y, batch_size=train_batch, epochs=epochs, verbose=0),
                                   epochs * (n // train_batch))
    conv.predict(x[:2 * predict_batch], batch_size=predict_batch, verbose=0)
    conv_forward = _seconds_per_call(lambda: conv.predict(x, batch_size=predict_batch, verbose=0), n // predict_batch)

    flat = x.reshape(n, -1)
    dense = keras.Sequential([keras.Input((784,)), keras.layers.Dense(512, activation="relu"),
                              keras.layers.Dense(512, activation="relu"), keras.layers.Dense(10)])
    dense.compile("adam", loss, steps_per_execution=steps_per_execution(16))
    dense.fit(flat[:2 * train_batch], y[:2 * train_batch], batch_size=train_batch, verbose=0)
    dense_train = _seconds_per_call(lambda: dense.fit(flat, y, batch_size=train_batch, epochs=epochs, verbose=0),
                                    epochs * (n // train_batch))
    print(f"{keras.backend.backend():<10} conv training step (batch {train_batch}) {1000 * conv_train:6.1f} ms | "
          f"conv forward (batch {predict_batch}) {1000 * conv_forward:6.1f} ms | "
          f"dense training step (batch {train_batch}) {1000 * dense_train:5.1f} ms")


if __name__ == "__main__":
    main()
