"""Self-supervised objectives of Days 07-08, written with backend-agnostic ``keras.ops``.

- :func:`nt_xent_loss`: the normalized temperature-scaled cross-entropy of SimCLR (Chen, Kornblith,
  Norouzi & Hinton, "A Simple Framework for Contrastive Learning of Visual Representations", ICML 2020)
  over all 2N views of a batch.
- :func:`info_nce_loss`: InfoNCE with a positive key and a set of negative keys (van den Oord, Li &
  Vinyals, "Representation Learning with Contrastive Predictive Coding", arXiv 2018), in the form MoCo
  uses with its queue (He, Fan, Wu, Xie & Girshick, "Momentum Contrast for Unsupervised Visual
  Representation Learning", CVPR 2020).
- :func:`negative_cosine_loss` / :func:`symmetric_stop_gradient_loss`: the non-contrastive losses of
  SimSiam (Chen & He, "Exploring Simple Siamese Representation Learning", CVPR 2021) and, up to the
  affine map ``2 - 2 cos``, BYOL (Grill et al., "Bootstrap Your Own Latent", NeurIPS 2020).
- :func:`mse_between_views`: the *broken* "contrastive" loss of widely shared code (no negatives, no
  stop-gradient); a constant representation minimises it. Day 07 demonstrates the collapse with it.
- :func:`embedding_std`: the collapse diagnostic of Chen & He (2021): the standard deviation of the
  L2-normalized embeddings over the batch, averaged over dimensions (0 = collapsed, about
  ``1/sqrt(d)`` for embeddings spread over the sphere).
"""

from __future__ import annotations

from keras import ops

_MASK_VALUE = -1e9


def l2_normalize(x, axis: int = -1, epsilon: float = 1e-12):
    """``x / max(||x||_2, sqrt(epsilon))`` along ``axis`` (the same shape and dtype as ``x``)."""
    return x * ops.rsqrt(ops.maximum(ops.sum(ops.square(x), axis=axis, keepdims=True), epsilon))


def _check_pair(z1, z2):
    if len(z1.shape) != 2 or tuple(z1.shape) != tuple(z2.shape):
        raise ValueError(f"expected two (batch, dim) tensors of the same shape, got {z1.shape} and {z2.shape}")


def nt_xent_logits(z1, z2, temperature: float = 0.5):
    """Masked similarity logits and positive indices of NT-Xent (see :func:`nt_xent_loss`).

    Returns:
        ``(logits, positives)``: float ``(2N, 2N)`` cosine similarities divided by ``temperature`` with the
        diagonal (self-similarity) set to -1e9, and int ``(2N,)`` index of each view's partner
        (``i + N`` for ``i < N``, ``i - N`` otherwise).
    """
    _check_pair(z1, z2)
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    z = l2_normalize(ops.concatenate([z1, z2], axis=0))
    n2 = ops.shape(z)[0]
    n = n2 // 2
    logits = ops.matmul(z, ops.transpose(z)) / temperature
    logits = ops.where(ops.eye(n2, dtype="bool"), ops.cast(_MASK_VALUE, logits.dtype), logits)
    positives = ops.concatenate([ops.arange(n, n2), ops.arange(0, n)], axis=0)
    return logits, positives


def nt_xent_loss(z1, z2, temperature: float = 0.5):
    r"""NT-Xent (normalized temperature-scaled cross-entropy), the SimCLR loss, averaged over all 2N views.

    With :math:`u_k` the L2-normalized projections of the 2N views (``z1`` rows then ``z2`` rows) and
    :math:`p(k)` the partner of view :math:`k`,

    .. math:: \ell_k = -\log \frac{\exp(u_k^\top u_{p(k)} / \tau)}{\sum_{j \ne k} \exp(u_k^\top u_j / \tau)},
              \qquad L = \frac{1}{2N} \sum_{k=1}^{2N} \ell_k .

    Each view has one positive (its partner) and 2N - 2 negatives (every other view of the batch);
    self-similarity is excluded from the denominator, and the loss is symmetric in ``z1`` and ``z2``.

    Args:
        z1, z2: float tensors ``(N, d)``: projections of the first and second view of the same N images.
        temperature: :math:`\tau > 0`; lower values weight hard negatives more.

    Returns:
        Scalar float tensor (nats). For random inputs it is about ``log(2N - 1)``.

    Raises:
        ValueError: shapes differ or are not 2-D, or ``temperature`` <= 0.
    """
    logits, positives = nt_xent_logits(z1, z2, temperature)
    return ops.mean(ops.sparse_categorical_crossentropy(positives, logits, from_logits=True))


def contrastive_accuracy(z1, z2, temperature: float = 0.5):
    """Fraction of the 2N views whose most similar other view is their partner (a training diagnostic).

    Returns:
        Scalar float tensor in [0, 1]; chance level is ``1 / (2N - 1)``.
    """
    logits, positives = nt_xent_logits(z1, z2, temperature)
    return ops.mean(ops.cast(ops.argmax(logits, axis=1) == ops.cast(positives, "int32"), "float32"))


def info_nce_loss(queries, keys, negatives, temperature: float = 0.2):
    r"""InfoNCE with one positive key per query and a shared set of negatives (MoCo's loss).

    .. math:: \ell_i = -\log \frac{\exp(q_i^\top k_i / \tau)}{\exp(q_i^\top k_i / \tau) + \sum_{m=1}^{K}
              \exp(q_i^\top n_m / \tau)}

    All vectors are L2-normalized here. In MoCo the keys come from the momentum encoder (no gradient
    flows into them: pass ``ops.stop_gradient(keys)``) and the negatives are the queue of past keys.

    Args:
        queries: float ``(N, d)``.
        keys: float ``(N, d)``: the positive of query ``i`` is key ``i`` (another view of the same image).
        negatives: float ``(K, d)``.
        temperature: :math:`\tau > 0`.

    Returns:
        Scalar float tensor (nats), the mean over the N queries; about ``log(K + 1)`` for random inputs.

    Raises:
        ValueError: inconsistent shapes or ``temperature`` <= 0.
    """
    _check_pair(queries, keys)
    if len(negatives.shape) != 2 or negatives.shape[1] != queries.shape[1]:
        raise ValueError(f"negatives must be (K, {queries.shape[1]}), got {negatives.shape}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    q, k, neg = l2_normalize(queries), l2_normalize(keys), l2_normalize(negatives)
    positive = ops.sum(q * k, axis=1, keepdims=True)                   # (N, 1)
    logits = ops.concatenate([positive, ops.matmul(q, ops.transpose(neg))], axis=1) / temperature
    targets = ops.zeros((ops.shape(q)[0],), dtype="int32")             # the positive is column 0
    return ops.mean(ops.sparse_categorical_crossentropy(targets, logits, from_logits=True))


def negative_cosine_loss(predictions, targets):
    r"""Mean negative cosine similarity :math:`-\cos(p, \mathrm{sg}(z))` with a stop-gradient on the targets.

    Args:
        predictions: float ``(N, d)``: the predictor's outputs :math:`p`.
        targets: float ``(N, d)``: the projections :math:`z` of the other view; wrapped in
            ``ops.stop_gradient`` so no gradient reaches them.

    Returns:
        Scalar float tensor in [-1, 1] (-1 when every prediction points exactly at its target).
    """
    _check_pair(predictions, targets)
    p = l2_normalize(predictions)
    z = l2_normalize(ops.stop_gradient(targets))
    return -ops.mean(ops.sum(p * z, axis=1))


def symmetric_stop_gradient_loss(p1, p2, z1, z2):
    r"""SimSiam's symmetrized loss :math:`\tfrac12 D(p_1, \mathrm{sg}(z_2)) + \tfrac12 D(p_2, \mathrm{sg}(z_1))`.

    :math:`D` is :func:`negative_cosine_loss`. BYOL's loss is ``2 + 2 *`` this value when ``z`` comes from
    its target (momentum) network.

    Args:
        p1, p2: predictor outputs of view 1 and view 2, float ``(N, d)``.
        z1, z2: projections of view 1 and view 2, float ``(N, d)`` (no gradient flows into them).

    Returns:
        Scalar float tensor in [-1, 1].
    """
    return 0.5 * negative_cosine_loss(p1, z2) + 0.5 * negative_cosine_loss(p2, z1)


def mse_between_views(z1, z2, normalize: bool = True):
    """The naive "contrastive" loss of widely shared code: squared error between the two views' outputs.

    It has no negatives and no stop-gradient, so a network that outputs the same vector for every
    image reaches its minimum, 0: training drives the representation to collapse. With ``normalize``
    (the default) the outputs are L2-normalized first, so the loss is ``2 - 2 cos(z1, z2)`` per pair
    and the collapse shows as every embedding pointing the same way (:func:`embedding_std` -> 0);
    without it the network can also just shrink its outputs towards 0. Provided only to demonstrate
    that failure (Day 07); never use it to learn representations.

    Args:
        z1, z2: float ``(N, d)`` outputs for the two views.
        normalize: L2-normalize each row before comparing.

    Returns:
        Scalar float tensor >= 0: the mean over the batch of the squared Euclidean distance.
    """
    _check_pair(z1, z2)
    if normalize:
        z1, z2 = l2_normalize(z1), l2_normalize(z2)
    return ops.mean(ops.sum(ops.square(z1 - z2), axis=1))


def embedding_std(z):
    """Collapse diagnostic: std over the batch of the L2-normalized embeddings, averaged over dimensions.

    Chen & He (CVPR 2021) monitor this quantity: it is 0 when every embedding is the same vector
    (complete collapse) and about ``1 / sqrt(d)`` when the embeddings are spread over the unit sphere.

    Args:
        z: float ``(N, d)`` embeddings (N >= 2).

    Returns:
        Scalar float tensor >= 0.
    """
    if len(z.shape) != 2:
        raise ValueError(f"expected (batch, dim) embeddings, got shape {z.shape}")
    return ops.mean(ops.std(l2_normalize(z), axis=0))
