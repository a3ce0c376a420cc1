"""Encoders and heads of the self-supervised methods (Days 07, 08 and 10).

- :func:`build_encoder`: the small convolutional (or MLP) encoder :math:`f` whose output :math:`h` is the
  representation evaluated with frozen-feature probes (and fine-tuned by FixMatch on Day 10).
- :func:`build_encoder28`: the 28x28 encoder of the default data (mnist5k), cheap on a CPU: its first
  convolution has stride 2.
- :func:`build_projection_head`: the MLP :math:`g` mapping :math:`h` to the space :math:`z` where a
  self-supervised loss is computed (the probes use :math:`h`, not :math:`z`; Chen et al., ICML 2020).
- :func:`build_predictor`: the bottleneck MLP of SimSiam and BYOL.
"""

from __future__ import annotations

import keras
from keras import layers


def build_encoder(input_shape=(8, 8, 1), kind: str = "conv", width: int = 16, embedding_dim: int = 128,
                  batch_norm: bool = True, bn_momentum: float = 0.9, name: str = "encoder") -> keras.Model:
    """A small encoder for 8x8 or 28x28 grayscale images (Functional API).

    ``kind="conv"``: ``[Conv3x3(width) -> BN -> ReLU] -> [Conv3x3(2 width) -> BN -> ReLU] -> MaxPool2``
    (repeated with a stride-2 stage for inputs larger than 16 pixels) -> ``Flatten`` -> ``Dense(embedding_dim)``
    -> BN -> ReLU. ``kind="mlp"``: ``Flatten -> [Dense(4 width) -> BN -> ReLU] -> Dense(embedding_dim) -> BN -> ReLU``.

    Args:
        input_shape: ``(height, width, channels)``, e.g. ``(8, 8, 1)`` or ``(28, 28, 1)``.
        kind: ``"conv"`` or ``"mlp"``.
        width: number of filters of the first convolution (units scale with it).
        embedding_dim: dimension of the representation :math:`h`.
        batch_norm: use batch normalisation after every hidden layer.
        bn_momentum: momentum of the batch-normalisation moving statistics. 0.9 rather than Keras' 0.99:
            short CPU runs have a few hundred steps, and the frozen encoder (inference mode) uses these
            statistics.
        name: model name.

    Returns:
        A ``keras.Model`` mapping float32 ``(batch, *input_shape)`` to float32 ``(batch, embedding_dim)``
        (non-negative: the last activation is a ReLU).

    Raises:
        ValueError: unknown ``kind`` or a non-positive size.
    """
    if kind not in ("conv", "mlp"):
        raise ValueError(f"kind must be 'conv' or 'mlp', got {kind!r}")
    if width < 1 or embedding_dim < 1:
        raise ValueError(f"width and embedding_dim must be >= 1, got {width}, {embedding_dim}")

    def norm_act(x, label):
        if batch_norm:
            x = layers.BatchNormalization(momentum=bn_momentum, name=f"{label}_bn")(x)
        return layers.Activation("relu", name=f"{label}_relu")(x)

    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = inputs
    if kind == "conv":
        stage = 0
        while True:
            stage += 1
            x = norm_act(layers.Conv2D(width * stage, 3, padding="same", use_bias=not batch_norm,
                                       name=f"conv{stage}a")(x), f"conv{stage}a")
            x = norm_act(layers.Conv2D(2 * width * stage, 3, padding="same", use_bias=not batch_norm,
                                       name=f"conv{stage}b")(x), f"conv{stage}b")
            x = layers.MaxPooling2D(2, name=f"pool{stage}")(x)
            if x.shape[1] <= 7:
                break
        x = layers.Flatten(name="flatten")(x)
    else:
        x = layers.Flatten(name="flatten")(x)
        x = norm_act(layers.Dense(4 * width, use_bias=not batch_norm, name="dense1")(x), "dense1")
    x = layers.Dense(embedding_dim, use_bias=not batch_norm, name="embedding")(x)
    outputs = norm_act(x, "embedding")
    return keras.Model(inputs, outputs, name=name)


#: Settings of :func:`build_encoder28` used by Days 07, 08 and 10 in quick mode on 28x28 images.
ENCODER28_DEFAULTS = {"width": 16, "embedding_dim": 128, "pooling": "flatten", "depth": 3}


def build_encoder28(input_shape=(28, 28, 1), width: int = 16, embedding_dim: int = 128, pooling: str = "flatten",
                    depth: int = 3, bn_momentum: float = 0.9, name: str = "encoder") -> keras.Model:
    """A small CNN for 28x28 images that spends few operations at full resolution (Functional API).

    ``Conv3x3(width, stride 2) -> BN -> ReLU`` (28 -> 14), ``Conv3x3(2 width) -> BN -> ReLU -> MaxPool2``
    (14 -> 7), then ``depth - 2`` blocks ``Conv3x3(4 width) -> BN -> ReLU`` at 7x7, then ``Flatten`` (or global
    average pooling) -> ``Dense(embedding_dim)`` -> BN -> ReLU.

    Args:
        input_shape: ``(height, width, channels)``; any size divisible by 4 works.
        width: filters of the first convolution (2 width and 4 width after).
        embedding_dim: dimension of the representation :math:`h`.
        pooling: ``"flatten"`` (keeps where strokes are: digits are position-coded) or ``"avg"``.
        depth: number of convolutions (>= 2).
        bn_momentum: momentum of the batch-normalisation statistics (0.9: runs are a few hundred steps).
        name: model name.

    Returns:
        A ``keras.Model`` float32 ``(batch, *input_shape)`` -> float32 ``(batch, embedding_dim)``, non-negative.

    Raises:
        ValueError: ``pooling`` unknown, ``depth`` < 2 or a non-positive size.
    """
    if pooling not in ("flatten", "avg"):
        raise ValueError(f"pooling must be 'flatten' or 'avg', got {pooling!r}")
    if depth < 2 or width < 1 or embedding_dim < 1:
        raise ValueError(f"need depth >= 2, width >= 1, embedding_dim >= 1; got {depth}, {width}, {embedding_dim}")

    def block(x, filters, label, strides=1):
        x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False, name=label)(x)
        x = layers.BatchNormalization(momentum=bn_momentum, name=f"{label}_bn")(x)
        return layers.Activation("relu", name=f"{label}_relu")(x)

    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = block(inputs, width, "conv1", strides=2)
    x = block(x, 2 * width, "conv2")
    x = layers.MaxPooling2D(2, name="pool2")(x)
    for i in range(3, depth + 1):
        x = block(x, 4 * width, f"conv{i}")
    x = layers.Flatten(name="flatten")(x) if pooling == "flatten" else layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(embedding_dim, use_bias=False, name="embedding")(x)
    x = layers.BatchNormalization(momentum=bn_momentum, name="embedding_bn")(x)
    outputs = layers.Activation("relu", name="embedding_relu")(x)
    return keras.Model(inputs, outputs, name=name)


def build_projection_head(input_dim: int = 128, hidden_dim: int = 128, output_dim: int = 64,
                          batch_norm: bool = True, output_batch_norm: bool = False,
                          name: str = "projection_head") -> keras.Model:
    """The projection head :math:`g`: ``Dense(hidden_dim) -> [BN] -> ReLU -> Dense(output_dim) [-> BN]``.

    SimCLR computes the loss on :math:`z = g(h)` and evaluates :math:`h`; the head absorbs the invariances
    the loss imposes that would otherwise throw away information useful downstream (Chen et al., 2020).

    Args:
        input_dim: dimension of the representation :math:`h`.
        hidden_dim, output_dim: widths of the hidden layer and of :math:`z`.
        batch_norm: batch normalisation after the hidden layer.
        output_batch_norm: batch normalisation (without scale and offset) on :math:`z`, as SimSiam's projector.
        name: model name.

    Returns:
        A ``keras.Model`` mapping float32 ``(batch, input_dim)`` to float32 ``(batch, output_dim)``.
    """
    inputs = keras.Input(shape=(int(input_dim),), name="representation")
    x = layers.Dense(hidden_dim, use_bias=not batch_norm, name="hidden")(inputs)
    if batch_norm:
        x = layers.BatchNormalization(name="hidden_bn")(x)
    x = layers.Activation("relu", name="hidden_relu")(x)
    outputs = layers.Dense(output_dim, use_bias=not output_batch_norm, name="projection")(x)
    if output_batch_norm:
        outputs = layers.BatchNormalization(center=False, scale=False, name="projection_bn")(outputs)
    return keras.Model(inputs, outputs, name=name)


def build_predictor(dim: int = 64, hidden_dim: int = 32, name: str = "predictor") -> keras.Model:
    """SimSiam / BYOL predictor :math:`h`: a bottleneck MLP ``Dense(hidden_dim) -> BN -> ReLU -> Dense(dim)``.

    The online branch's extra MLP that maps one view's projection to a prediction of the other view's
    (stop-gradient or momentum-target) projection; in both papers' ablations, removing it makes the
    representation collapse. BYOL: Grill et al., "Bootstrap Your Own Latent: A New Approach to Self-Supervised
    Learning", NeurIPS 2020 (an MLP with a wide hidden layer); SimSiam: Chen & He, "Exploring Simple Siamese
    Representation Learning", CVPR 2021 (a bottleneck, hidden width a quarter of ``dim``, no BN on the output).

    Args:
        dim: width of the input projection and of the prediction.
        hidden_dim: width of the hidden layer (half of ``dim`` with the defaults: a bottleneck).
        name: model name.

    Returns:
        A ``keras.Model`` mapping float32 ``(batch, dim)`` to float32 ``(batch, dim)``.

    Raises:
        ValueError: ``dim`` or ``hidden_dim`` not a positive integer (raised by Keras' ``Dense``).
    """
    inputs = keras.Input(shape=(int(dim),), name="projection")
    x = layers.Dense(hidden_dim, use_bias=False, name="hidden")(inputs)
    x = layers.BatchNormalization(name="hidden_bn")(x)
    x = layers.Activation("relu", name="hidden_relu")(x)
    outputs = layers.Dense(dim, name="prediction")(x)
    return keras.Model(inputs, outputs, name=name)
