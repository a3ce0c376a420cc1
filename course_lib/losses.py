"""Every objective of the course in one place, written with backend-agnostic ``keras.ops``.

Generative models (Days 05-06):

- :func:`gaussian_kl`, :func:`bernoulli_nll`: the two terms of the VAE's negative ELBO, per example, in nats
  (Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014).
- :func:`discriminator_loss`, :func:`generator_loss`: the GAN's binary cross-entropies, with the
  non-saturating generator loss (Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014).

Self-supervised objectives (Days 07-08):

- :func:`nt_xent_loss`: the normalized temperature-scaled cross-entropy of SimCLR (Chen, Kornblith,
  Norouzi & Hinton, "A Simple Framework for Contrastive Learning of Visual Representations", ICML 2020)
  over all 2N views of a batch.
- :func:`info_nce_loss`: InfoNCE with a positive key and a set of negative keys (van den Oord, Li &
  Vinyals, "Representation Learning with Contrastive Predictive Coding", arXiv 2018), in the form MoCo
  uses with its queue (He, Fan, Wu, Xie & Girshick, "Momentum Contrast for Unsupervised Visual
  Representation Learning", CVPR 2020).
- :func:`negative_cosine_loss` / :func:`symmetric_stop_gradient_loss`: the non-contrastive losses of
  SimSiam (Chen & He, "Exploring Simple Siamese Representation Learning", CVPR 2021) and, up to the
  affine map ``2 - 2 cos``, BYOL (Grill et al., "Bootstrap Your Own Latent", NeurIPS 2020): :func:`byol_loss`.
- :func:`mse_between_views`: the *broken* "contrastive" loss of widely shared code (no negatives, no
  stop-gradient); a constant representation minimises it. Day 07 demonstrates the collapse with it.
- :func:`embedding_std`: the collapse diagnostic of Chen & He (2021): the standard deviation of the
  L2-normalized embeddings over the batch, averaged over dimensions (0 = collapsed, about
  ``1/sqrt(d)`` for embeddings spread over the sphere).

Semi-supervised (Day 10):

- :func:`fixmatch_loss`: supervised cross-entropy plus the confidence-masked pseudo-label loss of FixMatch
  (Sohn et al., "FixMatch: Simplifying Semi-Supervised Learning with Consistency and Confidence", NeurIPS 2020).

Masked language modeling (Day 09):

- :func:`masked_lm_loss`: BERT's objective (Devlin, Chang, Lee & Toutanova, "BERT: Pre-training of Deep
  Bidirectional Transformers for Language Understanding", NAACL-HLT 2019): the cross-entropy of the
  ``MaskedLMHead``'s logits, averaged over the selected positions only (``mask_weights`` mark them); what
  :class:`course_lib.models.bert.MiniBert` trains with.
"""

from __future__ import annotations

from keras import ops

_MASK_VALUE = -1e9


def l2_normalize(x, axis: int = -1, epsilon: float = 1e-12):
    """``x / max(||x||_2, sqrt(epsilon))`` along ``axis`` (the same shape and dtype as ``x``).

    ``x`` may be a NumPy array: it is converted to a backend tensor first (PyTorch cannot multiply an
    ``ndarray`` by a tensor).
    """
    x = ops.convert_to_tensor(x)
    return x * ops.rsqrt(ops.maximum(ops.sum(ops.square(x), axis=axis, keepdims=True), epsilon))


def _check_pair(z1, z2):
    if len(z1.shape) != 2 or tuple(z1.shape) != tuple(z2.shape):
        raise ValueError(f"expected two (batch, dim) tensors of the same shape, got {z1.shape} and {z2.shape}")


def nt_xent_logits(z1, z2, temperature: float = 0.5):
    """Masked similarity logits and positive indices of NT-Xent (see :func:`nt_xent_loss`).

    Args:
        z1, z2: float tensors ``(N, d)``: projections of the first and second view of the same N images
            (NumPy arrays are accepted).
        temperature: > 0, the divisor of the cosine similarities.

    Returns:
        ``(logits, positives)``: float ``(2N, 2N)`` cosine similarities divided by ``temperature`` with the
        diagonal (self-similarity) set to -1e9, and int ``(2N,)`` index of each view's partner
        (``i + N`` for ``i < N``, ``i - N`` otherwise).

    Raises:
        ValueError: ``z1`` and ``z2`` are not 2-D or differ in shape, or ``temperature`` <= 0.
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

    Args:
        z1, z2: float tensors ``(N, d)``: projections of the first and second view of the same N images.
        temperature: > 0; it scales every logit alike, so it does not change the argmax.

    Returns:
        Scalar float32 tensor in [0, 1]; chance level is ``1 / (2N - 1)``.

    Raises:
        ValueError: ``z1`` and ``z2`` are not 2-D or differ in shape, or ``temperature`` <= 0.
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

    Raises:
        ValueError: ``predictions`` and ``targets`` are not 2-D or differ in shape.
    """
    _check_pair(predictions, targets)
    p = l2_normalize(predictions)
    z = l2_normalize(ops.stop_gradient(ops.convert_to_tensor(targets)))  # PyTorch: detach needs a tensor
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

    Raises:
        ValueError: ``p1`` and ``z2``, or ``p2`` and ``z1``, are not 2-D or differ in shape.
    """
    return 0.5 * negative_cosine_loss(p1, z2) + 0.5 * negative_cosine_loss(p2, z1)


def byol_loss(p1, p2, z1, z2):
    r"""BYOL's symmetrized regression loss :math:`\tfrac12 [\lVert\bar p_1 - \bar z_2\rVert^2 + \lVert\bar p_2 - \bar z_1\rVert^2]`.

    :math:`\bar x = x / \lVert x \rVert_2`, so each term is :math:`2 - 2\cos(p, z)`. The targets ``z`` come
    from the target (momentum) network and get no gradient (``ops.stop_gradient``). Grill et al., "Bootstrap
    Your Own Latent: A New Approach to Self-Supervised Learning", NeurIPS 2020, eq. 2.

    Args:
        p1, p2: online predictions for view 1 and view 2, float ``(N, d)``.
        z1, z2: target projections for view 1 and view 2, float ``(N, d)``.

    Returns:
        Scalar float tensor in [0, 4] (0 when every prediction points at its target), mean over the batch.

    Raises:
        ValueError: ``p1`` and ``z2``, or ``p2`` and ``z1``, are not 2-D or differ in shape.
    """
    _check_pair(p1, z2)
    _check_pair(p2, z1)

    def term(p, z):
        z = ops.stop_gradient(ops.convert_to_tensor(z))  # PyTorch: detach needs a tensor, not an ndarray
        return ops.mean(ops.sum(ops.square(l2_normalize(p) - l2_normalize(z)), axis=1))

    return 0.5 * (term(p1, z2) + term(p2, z1))


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

    Raises:
        ValueError: ``z1`` and ``z2`` are not 2-D or differ in shape.
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

    Raises:
        ValueError: ``z`` is not 2-D.
    """
    if len(z.shape) != 2:
        raise ValueError(f"expected (batch, dim) embeddings, got shape {z.shape}")
    return ops.mean(ops.std(l2_normalize(z), axis=0))


# --------------------------------------------------------------------------------------------
# Generative models
# --------------------------------------------------------------------------------------------

def gaussian_kl(z_mean, z_log_var):
    """Closed-form :math:`\\mathrm{KL}(\\mathcal N(\\mu, \\operatorname{diag}\\sigma^2) \\,\\|\\, \\mathcal N(0, I))` per example (nats).

    :math:`\\tfrac12 \\sum_j (\\sigma_j^2 + \\mu_j^2 - 1 - \\log \\sigma_j^2)`
    (Kingma & Welling, ICLR 2014, appendix B).

    Args:
        z_mean: float tensor ``(batch, latent_dim)``, :math:`\\mu`.
        z_log_var: float tensor ``(batch, latent_dim)``, :math:`\\log \\sigma^2`.

    Returns:
        float tensor ``(batch,)``, non-negative; 0 exactly when :math:`\\mu = 0` and :math:`\\sigma = 1`.
    """
    return 0.5 * ops.sum(ops.exp(z_log_var) + ops.square(z_mean) - 1.0 - z_log_var, axis=-1)


def bernoulli_nll(x, logits):
    """:math:`-\\log p(x \\mid \\text{logits})` of a Bernoulli per pixel, **summed** over pixels, per example (nats).

    :math:`\\sum_d \\operatorname{BCE}(x_d, \\operatorname{sigmoid}(\\ell_d))`, computed from the logits for numerical
    stability. A proper log-likelihood for binary ``x``; for grey levels in [0, 1] it is a cross-entropy
    whose minimum is the pixels' entropy, not 0.

    Args:
        x: float tensor ``(batch, ...)`` of targets in [0, 1].
        logits: float tensor, same shape.

    Returns:
        float tensor ``(batch,)``.
    """
    per_pixel = ops.binary_crossentropy(x, logits, from_logits=True)
    return ops.sum(ops.reshape(per_pixel, (ops.shape(per_pixel)[0], -1)), axis=-1)


def discriminator_loss(real_logits, fake_logits):
    """Binary cross-entropy of the discriminator: real images are labelled 1, generated images 0.

    :math:`L_D = \\operatorname{mean}[-\\log \\sigma(\\ell_{real})]
    + \\operatorname{mean}[-\\log(1 - \\sigma(\\ell_{fake}))]`, computed from logits as
    ``mean(softplus(-real)) + mean(softplus(fake))`` (stable for large logits).

    Args:
        real_logits: float tensor ``(batch, 1)`` (or ``(batch,)``), the discriminator's logits on real images.
        fake_logits: float tensor, its logits on generated images.

    Returns:
        A float32 scalar tensor (nats, summed over the two halves).
    """
    return ops.mean(ops.softplus(-real_logits)) + ops.mean(ops.softplus(fake_logits))


def generator_loss(fake_logits, non_saturating: bool = True):
    """The generator's loss on the discriminator's logits for generated images.

    - ``non_saturating=True`` (use this): :math:`L_G = \\operatorname{mean}[-\\log \\sigma(\\ell)] =
      \\operatorname{mean}[\\operatorname{softplus}(-\\ell)]`, i.e. cross-entropy with target 1. Its gradient is
      large exactly when the discriminator confidently rejects the samples (early in training).
    - ``non_saturating=False``: the original minimax objective :math:`\\operatorname{mean}[\\log(1 - \\sigma(\\ell))]
      = -\\operatorname{mean}[\\operatorname{softplus}(\\ell)]`, whose gradient vanishes when :math:`D(G(z)) \\to 0`
      (Goodfellow et al., NeurIPS 2014, recommend the non-saturating form for this reason). Kept for the
      Day 06 demonstration only.

    Args:
        fake_logits: float tensor ``(batch, 1)`` of discriminator logits on generated images.
        non_saturating: which form to compute.

    Returns:
        A float32 scalar tensor.
    """
    if non_saturating:
        return ops.mean(ops.softplus(-fake_logits))
    return -ops.mean(ops.softplus(fake_logits))


# --------------------------------------------------------------------------------------------
# Masked language modeling
# --------------------------------------------------------------------------------------------

def masked_lm_loss(labels, logits, weights=None):
    r"""The masked-LM loss: mean negative log-likelihood of the original tokens over the selected positions.

    .. math:: L = \frac{\sum_{b,p} w_{bp}\,\bigl(-\log \operatorname{softmax}(z_{bp})_{y_{bp}}\bigr)}
                    {\sum_{b,p} w_{bp}}

    ``keras_hub.layers.MaskedLMHead`` returns logits for a fixed number ``P`` of slots per sequence; rows
    with fewer selected tokens are padded and their padding slots have weight 0, so they never count. With
    0/1 weights this equals ``keras.losses.SparseCategoricalCrossentropy(from_logits=True,
    reduction="mean_with_sample_weight")`` with ``weights`` as sample weights, and ``exp(L)`` is the
    masked-token perplexity. BERT (Devlin et al., NAACL-HLT 2019, section 3.1) computes the loss on the
    selected positions only; passing weight 1 at every real position gives the "loss on every position"
    variant that Day 09 trains for comparison.

    Args:
        labels: int tensor ``(B, P)``: the original token ids at the predicted slots.
        logits: float tensor ``(B, P, V)``: unnormalised scores over the vocabulary.
        weights: float tensor ``(B, P)``: 1 for a real prediction, 0 for a padding slot (any non-negative
            weights work); None counts every slot.

    Returns:
        Scalar float tensor (nats per predicted token); 0 when every weight is 0.
    """
    nll = ops.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    if weights is None:
        return ops.mean(nll)
    weights = ops.cast(weights, nll.dtype)
    return ops.divide_no_nan(ops.sum(nll * weights), ops.sum(weights))


# --------------------------------------------------------------------------------------------
# Semi-supervised learning
# --------------------------------------------------------------------------------------------

def fixmatch_loss(y_labeled, probs_labeled, probs_weak, probs_strong, threshold: float = 0.95,
                  lambda_u: float = 1.0) -> dict:
    r"""The FixMatch objective (Sohn et al., NeurIPS 2020) on class probabilities.

    .. math::
        \ell_s = \frac{1}{B}\sum_{b=1}^{B} H\big(y_b, p(x_b^{weak})\big),\qquad
        \ell_u = \frac{1}{\mu B}\sum_{b=1}^{\mu B} \mathbb{1}\big[\max q_b \ge \tau\big]\,
                 H\big(\arg\max q_b,\; p(u_b^{strong})\big),\qquad q_b = \mathrm{sg}\,p(u_b^{weak}),

    total :math:`\ell_s + \lambda_u \ell_u`. The pseudo-label distribution :math:`q` is a constant
    (stop-gradient: the target must not move towards the prediction; with hard ``argmax`` pseudo-labels no
    gradient could flow through it anyway, the stop-gradient states the intent) and :math:`\ell_u` is divided
    by *all* :math:`\mu B` unlabeled images, not by the number of confident ones, so the unlabeled term grows
    as the model becomes confident.

    Args:
        y_labeled: int tensor ``(B,)`` of labels.
        probs_labeled: float ``(B, K)`` probabilities of the (weakly augmented) labeled images.
        probs_weak: float ``(mu B, K)`` probabilities of the weakly augmented unlabeled images.
        probs_strong: float ``(mu B, K)`` probabilities of the strongly augmented *same* unlabeled images.
        threshold: confidence threshold :math:`\tau` in [0, 1].
        lambda_u: weight :math:`\lambda_u \ge 0` of the unlabeled term.

    Returns:
        ``{"loss", "supervised_loss", "unlabeled_loss", "mask_rate"}``: scalar float tensors (``mask_rate``
        is the fraction of unlabeled images whose pseudo-label is used).
    """
    supervised = ops.mean(ops.sparse_categorical_crossentropy(y_labeled, probs_labeled))
    q = ops.stop_gradient(ops.convert_to_tensor(probs_weak))  # PyTorch: detach needs a tensor, not an ndarray
    mask = ops.cast(ops.max(q, axis=-1) >= threshold, probs_strong.dtype)
    pseudo = ops.argmax(q, axis=-1)
    unlabeled = ops.mean(mask * ops.sparse_categorical_crossentropy(pseudo, probs_strong))
    return {"loss": supervised + lambda_u * unlabeled, "supervised_loss": supervised,
            "unlabeled_loss": unlabeled, "mask_rate": ops.mean(mask)}
