"""FixMatch (Day 10): consistency between a weak and a strong view, with confident pseudo-labels.

FixMatch (Sohn et al., "FixMatch: Simplifying Semi-Supervised Learning with Consistency and Confidence",
NeurIPS 2020): the pseudo-label of an unlabeled image comes from a *weakly* augmented view and is used only
when the model is confident (:math:`\\max q \\ge \\tau`); the model is trained to predict it on a *strongly*
augmented view.

- :class:`FixMatch`: the Keras 3 model around any classifier; its ``compute_loss`` is
  :func:`course_lib.losses.fixmatch_loss`.
- :func:`build_fixmatch_augmenters`: the weak and the strong view.
- :func:`fixmatch_batches`: labeled + :math:`\\mu` times as many unlabeled images per batch.
- :class:`FixMatchTrainer`: trains one compiled model on many label draws without re-tracing.
- :class:`WarmupCosine`: linear warm-up then cosine decay, for short runs.
- :func:`softmax_head`: a pretrained encoder plus a new softmax layer (FixMatch's classifier on 28x28 images).

Nothing here ever reads the labels of the unlabeled data.
"""

from __future__ import annotations

import math
from typing import Callable

import keras
import numpy as np
from keras import layers, ops

from course_lib import backends, losses, training
from course_lib.backends import to_numpy
from course_lib.data.augment import allow_jit_on_jax
from course_lib.models.base import SubmodelConfig

#: Defaults of :class:`FixMatch` / :class:`FixMatchTrainer`, as in Sohn et al. (2020) except the batch size.
FIXMATCH_DEFAULTS = {"threshold": 0.95, "lambda_u": 1.0, "mu": 7, "batch_size": 16, "learning_rate": 3e-3}

#: Augmentation strengths (see :func:`course_lib.data.augment.build_augmenter`) of the weak and the strong view.
WEAK_AUGMENT = {"translate": 0.125, "rotate": 0.0, "zoom": 0.0, "noise": 0.0, "erase": 0.0}
STRONG_AUGMENT = {"translate": 0.2, "rotate": 20.0, "zoom": 0.2, "noise": 0.15, "erase": 0.7}


def build_fixmatch_augmenters(image_shape, seed: int = 0, weak: dict | None = None, strong: dict | None = None):
    """The weak and the strong augmentation of FixMatch, from :func:`course_lib.data.augment.build_augmenter`.

    Weak: a random shift of at most one pixel of an 8x8 image (12.5 % of the side), nothing else — the paper's
    flip-and-translate minus the flip (a mirrored digit is another symbol). Strong: larger shifts, rotation,
    zoom, pixel noise and erasing a patch (:data:`STRONG_AUGMENT`), in the spirit of the paper's strong
    augmentation, RandAugment (Cubuk, Zoph, Shlens & Le, "RandAugment: Practical Automated Data Augmentation
    with a Reduced Search Space", CVPR Workshops 2020) followed by Cutout (DeVries & Taylor, "Improved
    Regularization of Convolutional Neural Networks with Cutout", arXiv:1708.04552, 2017). Neither is
    implemented as such: RandAugment's photometric operations mean little for grayscale digits.

    Args:
        image_shape: ``(height, width, channels)``.
        seed: base seed (the strong pipeline uses ``seed + 10``).
        weak, strong: strengths overriding :data:`WEAK_AUGMENT` / :data:`STRONG_AUGMENT` (keys of
            :func:`course_lib.data.augment.build_augmenter`).

    Returns:
        ``(weak, strong)``: two ``keras.Sequential`` pipelines mapping float32 ``(batch, *image_shape)`` in
        [0, 1] to the same shape, active with ``training=True``.

    Raises:
        ValueError: a negative strength or an ``erase`` > 1 (from :func:`~course_lib.data.augment.build_augmenter`).
        TypeError: a key of ``weak`` or ``strong`` that ``build_augmenter`` does not take.
    """
    from course_lib.data.augment import build_augmenter

    weak_model = build_augmenter(tuple(image_shape), seed=seed, name="weak_augment", **{**WEAK_AUGMENT, **(weak or {})})
    strong_model = build_augmenter(tuple(image_shape), seed=seed + 10, name="strong_augment",
                                   **{**STRONG_AUGMENT, **(strong or {})})
    return weak_model, strong_model


@keras.saving.register_keras_serializable(package="course_lib")
class FixMatch(SubmodelConfig, keras.Model):
    r"""FixMatch (Sohn et al., NeurIPS 2020) around any classifier that outputs class probabilities.

    Training data (``fit``): ``x = (x_labeled, x_unlabeled)`` with ``x_labeled`` float ``(B, h, w, c)`` and
    ``x_unlabeled`` float ``(B, mu, h, w, c)`` — every labeled image travels with :math:`\mu` unlabeled
    images, so an ordinary batch of ``B`` rows holds ``B`` labeled and ``mu * B`` unlabeled images (the
    paper's unlabeled ratio :math:`\mu`); ``y`` = int labels ``(B,)`` of the labeled images only.
    :func:`fixmatch_batches` builds these arrays. The unlabeled images carry no label anywhere.

    Each step: weak views of the labeled images, weak and strong views of the unlabeled ones, one forward
    pass over the concatenation, then :func:`fixmatch_loss`. Metrics: ``loss``, ``supervised_loss``,
    ``unlabeled_loss``, ``mask_rate``.

    ``call(images)`` with a plain image tensor returns the classifier's probabilities (no augmentation),
    so ``predict(x_test)`` works as for the classifier alone. ``call((x_labeled, x_unlabeled))`` always
    augments (it is the training structure) and returns ``{"labeled", "weak", "strong"}`` probabilities.

    Args:
        classifier: a ``keras.Model`` ``(batch, h, w, c) -> (batch, K)`` probabilities (softmax output).
        weak_augmenter, strong_augmenter: layers/models applied with ``training=True``
            (default :func:`build_fixmatch_augmenters`).
        threshold: confidence threshold :math:`\tau` in [0, 1].
        lambda_u: weight :math:`\lambda_u \ge 0` of the unlabeled loss.
        seed: seed of the default augmenters.
        loss_fn: ``loss_fn(y_labeled, probs_labeled, probs_weak, probs_strong, threshold, lambda_u) -> dict``
            with the keys of :func:`course_lib.losses.fixmatch_loss` (the default); lets a student's own
            FixMatch loss train the model. Not serialised: a reloaded model uses the default.

    Raises:
        ValueError: ``threshold`` outside [0, 1] or ``lambda_u`` < 0 (at construction); in training,
            :meth:`compute_loss` raises it when ``x`` is not ``(x_labeled, x_unlabeled)``.
    """

    SUBMODELS = ("classifier", "weak_augmenter", "strong_augmenter")

    def __init__(self, classifier, weak_augmenter=None, strong_augmenter=None,
                 threshold: float = FIXMATCH_DEFAULTS["threshold"], lambda_u: float = FIXMATCH_DEFAULTS["lambda_u"],
                 seed: int = 0, loss_fn: Callable | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= threshold <= 1.0 or lambda_u < 0:
            raise ValueError(f"need 0 <= threshold <= 1 and lambda_u >= 0, got {threshold}, {lambda_u}")
        self.classifier = classifier
        if weak_augmenter is None or strong_augmenter is None:
            default_weak, default_strong = build_fixmatch_augmenters(tuple(classifier.input_shape[1:]), seed=seed)
            weak_augmenter = weak_augmenter if weak_augmenter is not None else default_weak
            strong_augmenter = strong_augmenter if strong_augmenter is not None else default_strong
        # jit-compatible on JAX, else the whole training step runs un-jitted (see allow_jit_on_jax)
        self.weak_augmenter = allow_jit_on_jax(weak_augmenter)
        self.strong_augmenter = allow_jit_on_jax(strong_augmenter)
        self.threshold, self.lambda_u, self.seed = float(threshold), float(lambda_u), seed
        self.loss_fn = loss_fn if loss_fn is not None else losses.fixmatch_loss
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.supervised_tracker = keras.metrics.Mean(name="supervised_loss")
        self.unlabeled_tracker = keras.metrics.Mean(name="unlabeled_loss")
        self.mask_tracker = keras.metrics.Mean(name="mask_rate")

    @property
    def metrics(self):
        """The trackers of ``loss``, ``supervised_loss``, ``unlabeled_loss`` and ``mask_rate`` (reset every epoch)."""
        return [self.loss_tracker, self.supervised_tracker, self.unlabeled_tracker, self.mask_tracker]

    def call(self, inputs, training=False):
        if not isinstance(inputs, (tuple, list)):
            return self.classifier(inputs, training=training)
        x_labeled, x_unlabeled = inputs
        x_unlabeled = ops.reshape(x_unlabeled, (-1, *x_unlabeled.shape[2:]))  # (B, mu, h, w, c) -> (mu B, h, w, c)
        n_labeled, n_unlabeled = ops.shape(x_labeled)[0], ops.shape(x_unlabeled)[0]
        views = ops.concatenate([self.weak_augmenter(x_labeled, training=True),
                                 self.weak_augmenter(x_unlabeled, training=True),
                                 self.strong_augmenter(x_unlabeled, training=True)], axis=0)
        probs = self.classifier(views, training=training)  # one pass: batch statistics see all three parts
        return {"labeled": probs[:n_labeled], "weak": probs[n_labeled:n_labeled + n_unlabeled],
                "strong": probs[n_labeled + n_unlabeled:]}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The FixMatch loss of one batch (``loss_fn``, by default :func:`course_lib.losses.fixmatch_loss`).

        Updates the four metric trackers with the loss terms.

        Args:
            x: the batch's inputs ``(x_labeled, x_unlabeled)`` (not read: ``y_pred`` holds their outputs).
            y: int labels ``(B,)`` of the labeled images.
            y_pred: ``call((x_labeled, x_unlabeled))``'s dict of probabilities: ``"labeled"`` ``(B, K)``,
                ``"weak"`` and ``"strong"`` ``(mu B, K)``.
            sample_weight: ignored.
            training: ignored.

        Returns:
            Scalar float tensor: :math:`\\ell_s + \\lambda_u \\ell_u`.

        Raises:
            ValueError: ``x`` was a plain image tensor, not ``(x_labeled, x_unlabeled)`` (``y_pred`` is then
                not a dict).
        """
        if not isinstance(y_pred, dict):
            raise ValueError("FixMatch trains on x = (x_labeled, x_unlabeled) (see fixmatch_batches), "
                             "not on images alone")
        terms = self.loss_fn(y, y_pred["labeled"], y_pred["weak"], y_pred["strong"], self.threshold, self.lambda_u)
        for tracker, key in ((self.loss_tracker, "loss"), (self.supervised_tracker, "supervised_loss"),
                             (self.unlabeled_tracker, "unlabeled_loss"), (self.mask_tracker, "mask_rate")):
            tracker.update_state(terms[key])
        return terms["loss"]

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold, "lambda_u": self.lambda_u, "seed": self.seed}


def fixmatch_batches(x_labeled, y_labeled, x_unlabeled, mu: int = FIXMATCH_DEFAULTS["mu"],
                     steps: int = 1000, batch_size: int = FIXMATCH_DEFAULTS["batch_size"], seed: int = 0):
    """Training arrays for :class:`FixMatch`: ``steps`` batches of ``batch_size`` labeled + ``mu * batch_size``
    unlabeled images.

    Labeled images are drawn uniformly *with replacement* (there may be only 10 of them); the unlabeled pool
    is walked through in random order, reshuffled each time it is exhausted.

    Args:
        x_labeled: float ``(n_labeled, h, w, c)``; y_labeled: int ``(n_labeled,)``.
        x_unlabeled: float ``(n_unlabeled, h, w, c)`` (no labels).
        mu: unlabeled images per labeled image (>= 1).
        steps: number of batches (>= 1).
        batch_size: labeled images per batch ``B`` (>= 1).
        seed: NumPy seed of the draws.

    Returns:
        ``((x_l, x_u), y_l)`` with ``x_l`` ``(steps B, h, w, c)``, ``x_u`` ``(steps B, mu, h, w, c)``,
        ``y_l`` ``(steps B,)``; pass them to ``fit(..., batch_size=B, shuffle=False)``.

    Raises:
        ValueError: empty inputs, mismatched labeled arrays, or a size < 1.
    """
    x_labeled, x_unlabeled = to_numpy(x_labeled, np.float32), to_numpy(x_unlabeled, np.float32)
    y_labeled = to_numpy(y_labeled, np.int64)
    if len(x_labeled) == 0 or len(x_labeled) != len(y_labeled) or len(x_unlabeled) == 0:
        raise ValueError(f"need labeled images with one label each and a non-empty unlabeled pool, got "
                         f"{len(x_labeled)} images, {len(y_labeled)} labels, {len(x_unlabeled)} unlabeled")
    if min(mu, steps, batch_size) < 1:
        raise ValueError(f"mu, steps and batch_size must be >= 1, got {mu}, {steps}, {batch_size}")
    rng = np.random.default_rng(seed)
    n = steps * batch_size
    labeled = rng.integers(0, len(x_labeled), size=n)
    passes = int(np.ceil(n * mu / len(x_unlabeled)))
    unlabeled = np.concatenate([rng.permutation(len(x_unlabeled)) for _ in range(passes)])[:n * mu]
    return (x_labeled[labeled], x_unlabeled[unlabeled].reshape(n, mu, *x_unlabeled.shape[1:])), y_labeled[labeled]


@keras.saving.register_keras_serializable(package="course_lib")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    r"""Linear warm-up from 0 to ``peak`` over ``warmup_steps``, then cosine decay to ``final_fraction * peak``.

    .. math::
        \eta(t) = \eta_{max}\,\frac{t+1}{W}\ (t < W),\qquad
        \eta(t) = \eta_{max}\Big(f + (1-f)\,\tfrac12\big(1+\cos\pi\,\tfrac{t-W}{T-W}\big)\Big)\ (t \ge W)

    FixMatch's paper decays the learning rate with a cosine over about a million SGD steps (Sohn et al.,
    NeurIPS 2020, section 4); a few hundred Adam steps profit from the same shape, after a short warm-up
    (Goyal et al., "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour", arXiv:1706.02677, 2017).

    Args:
        peak: the largest learning rate :math:`\eta_{max} > 0`.
        total_steps: :math:`T`, steps of the whole run (>= 1).
        warmup_steps: :math:`W`, in [0, total_steps).
        final_fraction: :math:`f` in [0, 1], the learning rate at the end as a fraction of the peak.

    Raises:
        ValueError: arguments outside the ranges above.
    """

    def __init__(self, peak: float, total_steps: int, warmup_steps: int = 0, final_fraction: float = 0.0):
        if peak <= 0 or total_steps < 1 or not 0 <= warmup_steps < total_steps or not 0 <= final_fraction <= 1:
            raise ValueError(f"need peak > 0, total_steps >= 1, 0 <= warmup_steps < total_steps, 0 <= final_fraction "
                             f"<= 1; got {peak}, {total_steps}, {warmup_steps}, {final_fraction}")
        self.peak, self.total_steps = float(peak), int(total_steps)
        self.warmup_steps, self.final_fraction = int(warmup_steps), float(final_fraction)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warm = self.peak * (step + 1.0) / max(self.warmup_steps, 1)
        progress = ops.clip((step - self.warmup_steps) / max(self.total_steps - self.warmup_steps, 1), 0.0, 1.0)
        cosine = self.peak * (self.final_fraction + (1 - self.final_fraction) * 0.5 * (1 + ops.cos(math.pi * progress)))
        return ops.where(step < self.warmup_steps, warm, cosine)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps,
                "final_fraction": self.final_fraction}


def softmax_head(encoder: keras.Model, n_classes: int, name: str = "classifier") -> keras.Model:
    """``encoder`` followed by a new ``Dense(n_classes, softmax)`` (the encoder's layers are shared, not copied).

    Returns:
        A ``keras.Model`` mapping images to class probabilities, float32 ``(batch, n_classes)``.
    """
    inputs = keras.Input(shape=tuple(encoder.input_shape[1:]), name="image")
    outputs = layers.Dense(n_classes, activation="softmax", name="probabilities")(encoder(inputs))
    return keras.Model(inputs, outputs, name=name)


class FixMatchTrainer:
    """Train :class:`FixMatch` on many label draws with one model, so TensorFlow traces the step only once.

    The model is built and compiled once; :meth:`fit` re-initialises the classifier's weights and the
    optimizer's state before training, so draws are independent. By default the new weights are fresh random
    values (a seeded clone); with ``rebuild=True``, ``build_classifier()`` is called for every draw and its
    weights are copied in, so a draw can start from a *pretrained* encoder plus a fresh softmax layer.
    :meth:`fit_predict` has the ``fit_predict(x_labeled, y_labeled, x_test)`` signature of
    :func:`course_lib.evaluation.label_efficiency.label_efficiency_curve`.

    Args:
        build_classifier: ``build_classifier() -> keras.Model`` with softmax output (called once, or once per
            draw with ``rebuild=True``, always after ``keras.utils.set_random_seed``).
        x_unlabeled: float ``(n_unlabeled, h, w, c)``, the unlabeled pool (e.g. all training images).
        steps: optimisation steps per fit.
        epochs: the steps are split into this many Keras epochs (the history logs one value per epoch).
            With ``fresh_batches=False`` every epoch reshuffles the same ``steps // epochs`` batches; with
            ``fresh_batches=True`` the ``steps`` batches are all different and the epochs walk through them.
        threshold, lambda_u, mu, batch_size, learning_rate: FixMatch hyper-parameters (:data:`FIXMATCH_DEFAULTS`);
            ``learning_rate`` is the peak of the schedule.
        seed: base seed (weights of draw ``i`` use ``seed + i``, augmentations ``seed``).
        weak, strong: augmentation strengths for :func:`build_fixmatch_augmenters`.
        steps_per_execution: training steps per call of the compiled step function (fewer Python round
            trips; the results are the same; always 1 on PyTorch).
        loss_fn: the FixMatch loss (default :func:`course_lib.losses.fixmatch_loss`), see :class:`FixMatch`.
        rebuild: take every draw's initial weights from ``build_classifier()`` (see above).
        schedule: ``"constant"`` or ``"warmup_cosine"`` (:class:`WarmupCosine` over ``steps``).
        warmup_fraction: share of the steps spent warming up with ``"warmup_cosine"``.
        fresh_batches: see ``epochs``.

    Attributes:
        model: the :class:`FixMatch` model; history: ``{metric: [value per epoch]}`` of the last fit.

    Raises:
        ValueError: ``steps`` < 1, ``epochs`` outside [1, steps], or an unknown ``schedule``.
    """

    def __init__(self, build_classifier: Callable, x_unlabeled, steps: int = 1500, epochs: int = 10,
                 threshold: float = FIXMATCH_DEFAULTS["threshold"], lambda_u: float = FIXMATCH_DEFAULTS["lambda_u"],
                 mu: int = FIXMATCH_DEFAULTS["mu"], batch_size: int = FIXMATCH_DEFAULTS["batch_size"],
                 learning_rate: float = FIXMATCH_DEFAULTS["learning_rate"], seed: int = 0,
                 weak: dict | None = None, strong: dict | None = None, steps_per_execution: int = 10,
                 loss_fn: Callable | None = None, rebuild: bool = False, schedule: str = "constant",
                 warmup_fraction: float = 0.05, fresh_batches: bool = False):
        keras.utils.set_random_seed(seed)
        self.x_unlabeled = to_numpy(x_unlabeled, np.float32)
        if steps < 1 or not 1 <= epochs <= steps:
            raise ValueError(f"need steps >= 1 and 1 <= epochs <= steps, got {steps}, {epochs}")
        if schedule not in ("constant", "warmup_cosine"):
            raise ValueError(f"schedule must be 'constant' or 'warmup_cosine', got {schedule!r}")
        self.steps, self.epochs, self.mu, self.batch_size, self.seed = int(steps), int(epochs), int(mu), \
            int(batch_size), seed
        self.build_classifier, self.rebuild, self.fresh_batches = build_classifier, bool(rebuild), bool(fresh_batches)
        classifier = build_classifier()
        weak_model, strong_model = build_fixmatch_augmenters(tuple(classifier.input_shape[1:]), seed, weak, strong)
        self.model = FixMatch(classifier, weak_model, strong_model, threshold=threshold, lambda_u=lambda_u, seed=seed,
                              loss_fn=loss_fn)
        rate = learning_rate if schedule == "constant" else \
            WarmupCosine(learning_rate, self.steps, int(warmup_fraction * self.steps))
        self.model.compile(optimizer=keras.optimizers.Adam(rate),
                           steps_per_execution=backends.steps_per_execution(steps_per_execution))
        # Build the model now on one batch: a model still unbuilt at its first fit is built by Keras from a batch
        # drawn from the shuffled data, which (JAX) consumes one more shuffle, so the first fit of a seed would not
        # repeat. The random generators advanced here are restarted by reset().
        x_one = self.x_unlabeled[:1]
        self.model((x_one, np.repeat(x_one[:, None], self.mu, axis=1)), training=False)
        self._optimizer_state = training.snapshot_optimizer(self.model.optimizer, self.model.trainable_variables)
        self.history = None
        self.draws = 0

    def reset(self, seed: int) -> None:
        """The draw's initial classifier weights, restarted random generators (all seeded), a fresh optimizer."""
        keras.utils.set_random_seed(seed)
        fresh = self.build_classifier() if self.rebuild else keras.models.clone_model(self.model.classifier)
        self.model.classifier.set_weights(fresh.get_weights())
        training.reset_seed_generators(self.model, seed)
        training.restore_optimizer(self.model.optimizer, self._optimizer_state)

    def fit(self, x_labeled, y_labeled, seed: int | None = None):
        """Train on one labeled set from the draw's initial weights; returns the trained :class:`FixMatch` model.

        Args:
            x_labeled: float ``(n_labeled, h, w, c)`` labeled images.
            y_labeled: int labels ``(n_labeled,)``.
            seed: seed of the draw's weights, batches and augmentations (default ``seed + draws``).

        Returns:
            :attr:`model`, trained; :attr:`history` holds its metrics, one value per epoch.

        Raises:
            ValueError: an empty or mismatched labeled set (see :func:`fixmatch_batches`), or (with
                ``rebuild=True``) a ``build_classifier()`` whose weights do not match the first model's.
        """
        seed = self.seed + self.draws if seed is None else seed
        self.draws += 1
        self.reset(seed)
        if not self.fresh_batches:
            (x_l, x_u), y_l = fixmatch_batches(x_labeled, y_labeled, self.x_unlabeled, self.mu,
                                               self.steps // self.epochs, self.batch_size, seed)
            history = self.model.fit((x_l, x_u), y_l, batch_size=self.batch_size, epochs=self.epochs, shuffle=True,
                                     verbose=0)
            self.history = dict(history.history)
            return self.model
        (x_l, x_u), y_l = fixmatch_batches(x_labeled, y_labeled, self.x_unlabeled, self.mu, self.steps,
                                           self.batch_size, seed)
        bounds = np.linspace(0, self.steps, self.epochs + 1).astype(int) * self.batch_size
        self.history = {}
        for start, stop in zip(bounds[:-1], bounds[1:]):  # one Keras epoch per chunk: the same compiled step
            chunk = self.model.fit((x_l[start:stop], x_u[start:stop]), y_l[start:stop], batch_size=self.batch_size,
                                   epochs=1, shuffle=False, verbose=0)
            for key, values in chunk.history.items():
                self.history.setdefault(key, []).extend(values)
        return self.model

    def predict_proba(self, x) -> np.ndarray:
        """Class probabilities ``(n, K)`` of the classifier on un-augmented images ``x`` (inference mode)."""
        return training.predict_batched(self.model.classifier, x)

    def predict(self, x) -> np.ndarray:
        """Predicted labels, int64 ``(n,)``, of float images ``x`` ``(n, h, w, c)``."""
        return self.predict_proba(x).argmax(axis=1)

    def fit_predict(self, x_labeled, y_labeled, x_test) -> np.ndarray:
        """:meth:`fit` then :meth:`predict` ``x_test``: int labels ``(n_test,)``."""
        self.fit(x_labeled, y_labeled)
        return self.predict(x_test)
