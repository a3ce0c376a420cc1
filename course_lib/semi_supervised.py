"""Semi-supervised learning (Day 10): self-training, FixMatch and label spreading.

A few labeled examples :math:`\\{(x_i, y_i)\\}_{i \\le n_l}` and many unlabeled ones :math:`\\{u_j\\}`:

- **Self-training / pseudo-labelling**: train on the labeled set, predict the unlabeled set, keep the
  predictions whose confidence reaches a threshold as *pseudo-labels*, retrain on labels + pseudo-labels,
  repeat (Lee, "Pseudo-Label: The Simple and Efficient Semi-Supervised Learning Method for Deep Neural
  Networks", ICML 2013 Workshop on Challenges in Representation Learning). :func:`select_pseudo_labels`
  is the selection step, :func:`self_training` the loop.
- **FixMatch** (Sohn et al., "FixMatch: Simplifying Semi-Supervised Learning with Consistency and
  Confidence", NeurIPS 2020): the pseudo-label of an unlabeled image comes from a *weakly* augmented view
  and is used only when the model is confident (:math:`\\max q \\ge \\tau`); the model is trained to predict
  it on a *strongly* augmented view. :func:`fixmatch_loss` is the objective, :class:`FixMatch` the Keras 3
  model, :class:`FixMatchTrainer` trains it for many label draws without re-tracing.
- **Label spreading** (Zhou, Bousquet, Lal, Weston & Schölkopf, "Learning with Local and Global
  Consistency", NeurIPS 2003): labels diffuse over a k-nearest-neighbour graph of all images;
  :func:`label_spreading_predict` wraps ``sklearn.semi_supervised.LabelSpreading``.

Nothing here ever reads the labels of the unlabeled data: the only labels a method sees are the ones it is
given as ``y_labeled`` (the optional ``y_unlabeled`` of :func:`self_training` is used for diagnostics only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import keras
import numpy as np
from keras import ops

#: Defaults of :class:`FixMatch` / :class:`FixMatchTrainer`, as in Sohn et al. (2020) except the batch size.
FIXMATCH_DEFAULTS = {"threshold": 0.95, "lambda_u": 1.0, "mu": 7, "batch_size": 16, "learning_rate": 3e-3}

#: Augmentation strengths (see :func:`course_lib.augment.build_augmenter`) of the weak and the strong view.
WEAK_AUGMENT = {"translate": 0.125, "rotate": 0.0, "zoom": 0.0, "noise": 0.0, "erase": 0.0}
STRONG_AUGMENT = {"translate": 0.2, "rotate": 20.0, "zoom": 0.2, "noise": 0.15, "erase": 0.7}


# --------------------------------------------------------------------------------------------
# Self-training
# --------------------------------------------------------------------------------------------

def select_pseudo_labels(probabilities, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The selection step of self-training: keep the predictions whose confidence reaches ``threshold``.

    The confidence of a row is its largest class probability; its pseudo-label is that class (the first
    one on ties, as ``argmax``).

    Args:
        probabilities: float array ``(n_unlabeled, n_classes)`` of predicted class probabilities.
        threshold: confidence threshold in [0, 1]; rows with ``max(p) >= threshold`` are kept (0 keeps all).

    Returns:
        ``(indices, labels)``: int64 arrays ``(n_selected,)`` — the selected rows in increasing order and
        their pseudo-labels (column indices).

    Raises:
        ValueError: ``probabilities`` not 2-D, or ``threshold`` outside [0, 1].
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2:
        raise ValueError(f"probabilities must have shape (n, n_classes), got {probabilities.shape}")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    confident = np.flatnonzero(probabilities.max(axis=1) >= threshold).astype(np.int64)
    return confident, probabilities[confident].argmax(axis=1).astype(np.int64)


@dataclass
class SelfTrainingResult:
    """Outcome of :func:`self_training`.

    Attributes:
        estimator: the classifier of the last round (fitted on labels + the last pseudo-labels).
        history: one dict per round: ``round``, ``n_pseudo`` (pseudo-labels used to fit that round's
            classifier), ``pseudo_accuracy`` (their accuracy, only when ``y_unlabeled`` was given, else NaN).
        pseudo_indices, pseudo_labels: the pseudo-labels selected after the last round.
    """

    estimator: object
    history: list = field(default_factory=list)
    pseudo_indices: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    pseudo_labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def predict(self, x) -> np.ndarray:
        """Labels predicted by the final classifier for ``x`` (flattened to ``(n, d)``)."""
        return np.asarray(self.estimator.predict(_flat(x)))


def _flat(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x.reshape(len(x), -1)


def self_training(make_estimator: Callable, x_labeled, y_labeled, x_unlabeled, threshold: float = 0.9,
                  n_rounds: int = 5, select: Callable = select_pseudo_labels, y_unlabeled=None) -> SelfTrainingResult:
    """Iterated self-training with confidence-thresholded pseudo-labels.

    Round 0 fits a fresh classifier on the labeled data only. Every later round predicts the whole
    unlabeled pool with the previous classifier, keeps ``select(probabilities, threshold)`` as pseudo-labels
    (recomputed from scratch each round, so an earlier mistake *can* be revised) and fits a fresh classifier
    on labels + pseudo-labels. The loop stops after ``n_rounds`` rounds or when the selection no longer
    changes.

    Args:
        make_estimator: ``make_estimator() -> classifier`` with scikit-learn's ``fit(X, y)``,
            ``predict_proba(X)``, ``predict(X)`` and ``classes_`` (e.g. a ``LogisticRegression`` pipeline).
        x_labeled: array ``(n_labeled, ...)``, flattened to ``(n_labeled, d)``.
        y_labeled: int array ``(n_labeled,)``.
        x_unlabeled: array ``(n_unlabeled, ...)`` with the same ``d`` (its labels are never used).
        threshold: confidence threshold passed to ``select``.
        n_rounds: number of pseudo-labelling rounds after round 0 (>= 0).
        select: the selection step, ``select(probabilities, threshold) -> (indices, labels)`` with
            labels as column indices of ``probabilities`` (default :func:`select_pseudo_labels`).
        y_unlabeled: optional true labels of the pool, used only to report ``pseudo_accuracy``.

    Returns:
        A :class:`SelfTrainingResult`.

    Raises:
        ValueError: inputs of mismatched lengths or ``n_rounds`` < 0.
    """
    x_labeled, x_unlabeled = _flat(x_labeled), _flat(x_unlabeled)
    y_labeled = np.asarray(y_labeled)
    if len(x_labeled) != len(y_labeled) or n_rounds < 0:
        raise ValueError(f"need len(x_labeled) == len(y_labeled) and n_rounds >= 0, got {len(x_labeled)}, "
                         f"{len(y_labeled)}, {n_rounds}")
    estimator = make_estimator().fit(x_labeled, y_labeled)
    result = SelfTrainingResult(estimator, [{"round": 0, "n_pseudo": 0, "pseudo_accuracy": float("nan")}])
    previous = None
    for round_ in range(1, n_rounds + 1):
        indices, columns = select(estimator.predict_proba(x_unlabeled), threshold)
        indices = np.asarray(indices, dtype=np.int64)
        labels = np.asarray(estimator.classes_)[np.asarray(columns, dtype=np.int64)]
        result.pseudo_indices, result.pseudo_labels = indices, labels
        if previous is not None and np.array_equal(previous[0], indices) and np.array_equal(previous[1], labels):
            break  # a fixed point: the next classifier would be the same
        previous = (indices, labels)
        estimator = make_estimator().fit(np.concatenate([x_labeled, x_unlabeled[indices]]),
                                         np.concatenate([y_labeled, labels]))
        accuracy = float("nan")
        if y_unlabeled is not None and len(indices):
            accuracy = float(np.mean(labels == np.asarray(y_unlabeled)[indices]))
        result.estimator = estimator
        result.history.append({"round": round_, "n_pseudo": int(len(indices)), "pseudo_accuracy": accuracy})
    return result


def logistic_regression(C: float = 1.0, max_iter: int = 2000):
    """The course's pixel classifier for self-training: ``StandardScaler`` + ``LogisticRegression(C)``.

    The same model as :func:`course_lib.evaluation.linear_probe_predict`, returned unfitted (a
    scikit-learn pipeline with ``fit``, ``predict_proba``, ``predict`` and ``classes_``).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))


# --------------------------------------------------------------------------------------------
# Label spreading
# --------------------------------------------------------------------------------------------

def label_spreading_predict(x_labeled, y_labeled, x_unlabeled, x_test, n_neighbors: int = 10,
                            alpha: float = 0.2, max_iter: int = 200) -> np.ndarray:
    """Label spreading over a k-nearest-neighbour graph of labeled + unlabeled images; predict ``x_test``.

    ``sklearn.semi_supervised.LabelSpreading(kernel="knn")`` is fitted on the labeled and unlabeled images
    (label -1 for the unlabeled ones); the test images are then labeled from their nearest training
    neighbours' spread label distributions (inductive use; the test images are not in the graph). A test
    image whose neighbours received no label mass at all (a graph component without any labeled image)
    gets the most common labeled class instead of scikit-learn's NaN-derived answer.

    Args:
        x_labeled: array ``(n_labeled, ...)`` flattened to ``(n_labeled, d)``; y_labeled: int ``(n_labeled,)``.
        x_unlabeled: array ``(n_unlabeled, ...)`` (labels never used). x_test: array ``(n_test, ...)``.
        n_neighbors: neighbours of the kNN graph.
        alpha: clamping factor in (0, 1): the fraction of a node's label taken from its neighbours each step.
        max_iter: iterations of the propagation.

    Returns:
        int64 array ``(n_test,)`` of predicted labels.
    """
    import warnings

    from sklearn.semi_supervised import LabelSpreading

    y_labeled = np.asarray(y_labeled, dtype=np.int64)
    x = np.concatenate([_flat(x_labeled), _flat(x_unlabeled)])
    y = np.concatenate([y_labeled, np.full(len(x) - len(y_labeled), -1, dtype=np.int64)])
    model = LabelSpreading(kernel="knn", n_neighbors=n_neighbors, alpha=alpha, max_iter=max_iter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # 0/0 for test points without label mass, handled below
        model.fit(x, y)
        probabilities = model.predict_proba(_flat(x_test))
    undecided = ~np.all(np.isfinite(probabilities), axis=1) | (np.nan_to_num(probabilities).sum(axis=1) == 0)
    predictions = model.classes_[np.nan_to_num(probabilities).argmax(axis=1)].astype(np.int64)
    predictions[undecided] = np.bincount(y_labeled).argmax()
    return predictions


# --------------------------------------------------------------------------------------------
# FixMatch
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
    q = ops.stop_gradient(probs_weak)
    mask = ops.cast(ops.max(q, axis=-1) >= threshold, probs_strong.dtype)
    pseudo = ops.argmax(q, axis=-1)
    unlabeled = ops.mean(mask * ops.sparse_categorical_crossentropy(pseudo, probs_strong))
    return {"loss": supervised + lambda_u * unlabeled, "supervised_loss": supervised,
            "unlabeled_loss": unlabeled, "mask_rate": ops.mean(mask)}


def _serialize(obj):
    return keras.saving.serialize_keras_object(obj)


def _deserialize(config):
    return keras.saving.deserialize_keras_object(config)


def build_fixmatch_augmenters(image_shape, seed: int = 0, weak: dict | None = None, strong: dict | None = None):
    """The weak and the strong augmentation of FixMatch, from :func:`course_lib.augment.build_augmenter`.

    Weak: a random shift of at most one pixel of an 8x8 image (12.5 % of the side), nothing else — the paper's
    flip-and-translate minus the flip (a mirrored digit is another symbol). Strong: larger shifts, rotation,
    zoom, pixel noise and erasing a patch (:data:`STRONG_AUGMENT`), in the spirit of the paper's
    RandAugment + Cutout.

    Args:
        image_shape: ``(height, width, channels)``.
        seed: base seed (the strong pipeline uses ``seed + 10``).
        weak, strong: strengths overriding :data:`WEAK_AUGMENT` / :data:`STRONG_AUGMENT`.

    Returns:
        ``(weak, strong)``: two ``keras.Sequential`` pipelines, active with ``training=True``.
    """
    from course_lib.augment import build_augmenter

    weak_model = build_augmenter(tuple(image_shape), seed=seed, name="weak_augment", **{**WEAK_AUGMENT, **(weak or {})})
    strong_model = build_augmenter(tuple(image_shape), seed=seed + 10, name="strong_augment",
                                   **{**STRONG_AUGMENT, **(strong or {})})
    return weak_model, strong_model


@keras.saving.register_keras_serializable(package="course_lib")
class FixMatch(keras.Model):
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

    Raises:
        ValueError: ``threshold`` outside [0, 1] or ``lambda_u`` < 0.
    """

    def __init__(self, classifier, weak_augmenter=None, strong_augmenter=None,
                 threshold: float = FIXMATCH_DEFAULTS["threshold"], lambda_u: float = FIXMATCH_DEFAULTS["lambda_u"],
                 seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= threshold <= 1.0 or lambda_u < 0:
            raise ValueError(f"need 0 <= threshold <= 1 and lambda_u >= 0, got {threshold}, {lambda_u}")
        self.classifier = classifier
        if weak_augmenter is None or strong_augmenter is None:
            default_weak, default_strong = build_fixmatch_augmenters(tuple(classifier.input_shape[1:]), seed=seed)
            weak_augmenter = weak_augmenter if weak_augmenter is not None else default_weak
            strong_augmenter = strong_augmenter if strong_augmenter is not None else default_strong
        self.weak_augmenter, self.strong_augmenter = weak_augmenter, strong_augmenter
        self.threshold, self.lambda_u, self.seed = float(threshold), float(lambda_u), seed
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.supervised_tracker = keras.metrics.Mean(name="supervised_loss")
        self.unlabeled_tracker = keras.metrics.Mean(name="unlabeled_loss")
        self.mask_tracker = keras.metrics.Mean(name="mask_rate")

    @property
    def metrics(self):
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
        if not isinstance(y_pred, dict):
            raise ValueError("FixMatch trains on x = (x_labeled, x_unlabeled) (see fixmatch_batches), "
                             "not on images alone")
        terms = fixmatch_loss(y, y_pred["labeled"], y_pred["weak"], y_pred["strong"], self.threshold, self.lambda_u)
        for tracker, key in ((self.loss_tracker, "loss"), (self.supervised_tracker, "supervised_loss"),
                             (self.unlabeled_tracker, "unlabeled_loss"), (self.mask_tracker, "mask_rate")):
            tracker.update_state(terms[key])
        return terms["loss"]

    def get_config(self):
        return {**super().get_config(), "classifier": _serialize(self.classifier),
                "weak_augmenter": _serialize(self.weak_augmenter),
                "strong_augmenter": _serialize(self.strong_augmenter),
                "threshold": self.threshold, "lambda_u": self.lambda_u, "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("classifier", "weak_augmenter", "strong_augmenter"):
            config[key] = _deserialize(config[key])
        return cls(**config)


def reset_seed_generators(model, seed: int) -> int:
    """Restart every ``keras.random.SeedGenerator`` inside ``model`` from a state derived from ``seed``.

    ``keras.utils.set_random_seed`` does not touch generators that already exist; a layer's generator (dropout,
    random augmentations) keeps advancing from one ``fit`` to the next. Resetting them makes a training run
    depend only on its own seed. Generator ``i`` restarts at ``[(s_i + 1_000_003 * seed) mod (2^31 - 1), 0]``,
    where ``s_i`` is the seed it was created with (read from its state variable the first time).

    Args:
        model: a ``keras.Model`` (or layer).
        seed: non-negative integer.

    Returns:
        The number of generators reset.
    """
    states = [v for v in model.variables if v.path.endswith("seed_generator_state")]
    if not hasattr(model, "_course_initial_seeds"):
        model._course_initial_seeds = {v.path: int(np.asarray(v)[0]) for v in states}
    for variable in states:
        start = (model._course_initial_seeds.get(variable.path, 0) + 1_000_003 * int(seed)) % (2**31 - 1)
        variable.assign(np.array([start, 0], dtype=np.asarray(variable).dtype))
    return len(states)


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
    x_labeled, x_unlabeled = np.asarray(x_labeled, np.float32), np.asarray(x_unlabeled, np.float32)
    y_labeled = np.asarray(y_labeled, np.int64)
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


class FixMatchTrainer:
    """Train :class:`FixMatch` on many label draws with one model, so TensorFlow traces the step only once.

    The model is built and compiled once; :meth:`fit` re-initialises the classifier's weights (fresh
    random values from a clone, seeded) and the optimizer's state before training, so draws are independent.
    :meth:`fit_predict` has the ``fit_predict(x_labeled, y_labeled, x_test)`` signature of
    :func:`course_lib.evaluation.label_efficiency_curve`.

    Args:
        build_classifier: ``build_classifier() -> keras.Model`` with softmax output (called once).
        x_unlabeled: float ``(n_unlabeled, h, w, c)``, the unlabeled pool (e.g. all training images).
        steps: optimisation steps per fit.
        epochs: the steps are split into this many Keras epochs (the history logs one value per epoch;
            every epoch reshuffles the batches).
        threshold, lambda_u, mu, batch_size, learning_rate: FixMatch hyper-parameters (:data:`FIXMATCH_DEFAULTS`).
        seed: base seed (weights of draw ``i`` use ``seed + i``, augmentations ``seed``).
        weak, strong: augmentation strengths for :func:`build_fixmatch_augmenters`.
        steps_per_execution: training steps per call of the compiled step function (fewer Python round
            trips; the results are the same).

    Attributes:
        model: the :class:`FixMatch` model; history: the ``History`` of the last fit.
    """

    def __init__(self, build_classifier: Callable, x_unlabeled, steps: int = 1500, epochs: int = 10,
                 threshold: float = FIXMATCH_DEFAULTS["threshold"], lambda_u: float = FIXMATCH_DEFAULTS["lambda_u"],
                 mu: int = FIXMATCH_DEFAULTS["mu"], batch_size: int = FIXMATCH_DEFAULTS["batch_size"],
                 learning_rate: float = FIXMATCH_DEFAULTS["learning_rate"], seed: int = 0,
                 weak: dict | None = None, strong: dict | None = None, steps_per_execution: int = 10):
        keras.utils.set_random_seed(seed)
        self.x_unlabeled = np.asarray(x_unlabeled, np.float32)
        if steps < 1 or not 1 <= epochs <= steps:
            raise ValueError(f"need steps >= 1 and 1 <= epochs <= steps, got {steps}, {epochs}")
        self.steps, self.epochs, self.mu, self.batch_size, self.seed = int(steps), int(epochs), int(mu), \
            int(batch_size), seed
        classifier = build_classifier()
        weak_model, strong_model = build_fixmatch_augmenters(tuple(classifier.input_shape[1:]), seed, weak, strong)
        self.model = FixMatch(classifier, weak_model, strong_model, threshold=threshold, lambda_u=lambda_u, seed=seed)
        self.model.compile(optimizer=keras.optimizers.Adam(learning_rate), steps_per_execution=steps_per_execution)
        # Build the optimizer's variables now: created inside the first traced step, they would make
        # TensorFlow trace the step a second time.
        self.model.optimizer.build(self.model.trainable_variables)
        self._optimizer_state = [np.array(v) for v in self.model.optimizer.variables]
        self.history = None
        self.draws = 0

    def reset(self, seed: int) -> None:
        """Fresh random classifier weights, restarted random generators (all seeded) and a fresh optimizer state."""
        keras.utils.set_random_seed(seed)
        fresh = keras.models.clone_model(self.model.classifier)
        self.model.classifier.set_weights(fresh.get_weights())
        reset_seed_generators(self.model, seed)
        for variable, value in zip(self.model.optimizer.variables, self._optimizer_state):
            variable.assign(value)

    def fit(self, x_labeled, y_labeled, seed: int | None = None):
        """Train from scratch on one labeled set; returns the trained :class:`FixMatch` model."""
        seed = self.seed + self.draws if seed is None else seed
        self.draws += 1
        self.reset(seed)
        (x_l, x_u), y_l = fixmatch_batches(x_labeled, y_labeled, self.x_unlabeled, self.mu,
                                           self.steps // self.epochs, self.batch_size, seed)
        self.history = self.model.fit((x_l, x_u), y_l, batch_size=self.batch_size, epochs=self.epochs, shuffle=True,
                                      verbose=0)
        return self.model

    def predict(self, x) -> np.ndarray:
        """Predicted labels ``(n,)`` of images ``x``."""
        return np.asarray(self.model.predict(np.asarray(x, np.float32), batch_size=512, verbose=0)).argmax(axis=1)

    def fit_predict(self, x_labeled, y_labeled, x_test) -> np.ndarray:
        """:meth:`fit` then :meth:`predict` ``x_test``: int labels ``(n_test,)``."""
        self.fit(x_labeled, y_labeled)
        return self.predict(x_test)
