"""Non-contrastive self-supervised learning (Day 08): no negatives, a predictor and an asymmetry prevent collapse.

- :class:`SimSiam` (Chen & He, "Exploring Simple Siamese Representation Learning", CVPR 2021): a predictor on
  one branch and a stop-gradient on the other.
- :class:`BYOL` (Grill et al., "Bootstrap Your Own Latent", NeurIPS 2020): the same idea with a momentum
  (exponential moving average) target network instead of the stop-gradient twin.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from course_lib import losses
from course_lib.models.base import SelfSupervisedModel
from course_lib.models.contrastive import default_augmenter, momentum_update, target_copy


@keras.saving.register_keras_serializable(package="course_lib")
class SimSiam(SelfSupervisedModel):
    r"""SimSiam: a Siamese network with a predictor and a stop-gradient, no negatives (Chen & He, CVPR 2021).

    Each step: two independent views, projections :math:`z_1, z_2` (encoder + projection head) and
    predictions :math:`p_i = h(z_i)`; the loss is
    :func:`course_lib.losses.symmetric_stop_gradient_loss`
    :math:`\tfrac12 D(p_1, \mathrm{sg}(z_2)) + \tfrac12 D(p_2, \mathrm{sg}(z_1))` with :math:`D` the negative
    cosine similarity. Without the stop-gradient the same network collapses to a constant; with it, the
    ``std`` metric (:func:`course_lib.losses.embedding_std` of :math:`z`) stays well above 0.

    Args:
        encoder, projection_head: as in :class:`SimCLR`. The paper's projector ends with batch normalisation
            (``build_projection_head(..., output_batch_norm=True)``); in the course's short runs a plain
            projector works as well, and only without that final normalisation does removing the stop-gradient
            show the collapse (standardising every output dimension over the batch also keeps outputs apart).
        predictor: ``(batch, p) -> (batch, p)``, e.g. :func:`build_predictor`.
        augmenter: view generator (default :func:`course_lib.data.augment.build_augmenter`).
        stop_gradient: keep the stop-gradient (True); False demonstrates the collapse.
        seed: seed of the default augmenter.
    """

    METRICS = ("loss", "std")
    SUBMODELS = ("encoder", "projection_head", "predictor", "augmenter")

    def __init__(self, encoder, projection_head, predictor, augmenter=None, stop_gradient: bool = True,
                 seed: int = 0, **kwargs):
        super().__init__(encoder, default_augmenter(encoder, augmenter, seed), seed=seed, **kwargs)
        self.projection_head = projection_head
        self.predictor = predictor
        self.stop_gradient = bool(stop_gradient)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        view1, view2 = self.two_views(x)
        z = self.projection_head(self.encoder(ops.concatenate([view1, view2], axis=0), training=training),
                                 training=training)
        p1, p2 = ops.split(self.predictor(z, training=training), 2)
        z1, z2 = ops.split(z, 2)
        if self.stop_gradient:
            loss = losses.symmetric_stop_gradient_loss(p1, p2, z1, z2)
        else:  # the ablation: gradients flow into both branches
            cos = lambda p, t: ops.mean(ops.sum(losses.l2_normalize(p) * losses.l2_normalize(t), axis=1))
            loss = -0.5 * (cos(p1, z2) + cos(p2, z1))
        self.track(loss=loss, std=losses.embedding_std(z1))
        return loss

    def get_config(self):
        return {**super().get_config(), "stop_gradient": self.stop_gradient}


# --------------------------------------------------------------------------------------------
# BYOL
# --------------------------------------------------------------------------------------------

def cosine_momentum(step, total_steps: int, base: float):
    r"""BYOL's target-momentum schedule :math:`\tau_k = 1 - (1 - \tau_{base}) (\cos(\pi k / K) + 1) / 2`.

    Grill et al., NeurIPS 2020, section 3.2: the target moves more and more slowly, up to :math:`\tau = 1`
    (frozen) at the end of training.

    Args:
        step: current step :math:`k` (tensor or int).
        total_steps: :math:`K` (>= 1); after it the momentum stays at 1.
        base: :math:`\tau_{base} \in [0, 1]`.

    Returns:
        Scalar float32 tensor in ``[base, 1]``.
    """
    progress = ops.minimum(ops.cast(step, "float32") / float(max(int(total_steps), 1)), 1.0)
    return 1.0 - (1.0 - base) * (ops.cos(math.pi * progress) + 1.0) / 2.0


@keras.saving.register_keras_serializable(package="course_lib")
class BYOL(SelfSupervisedModel):
    r"""BYOL: an online network predicts a momentum target network's projection; no negatives.

    Grill, Strub, Altché, Tallec, Richemond, Buchatskaya, Doersch, Pires, Guo, Azar, Piot, Kavukcuoglu, Munos &
    Valko, "Bootstrap Your Own Latent: A New Approach to Self-Supervised Learning", NeurIPS 2020.

    Online network: ``encoder`` -> ``projection_head`` -> ``predictor``, trained by gradient descent. Target
    network: copies of ``encoder`` and ``projection_head`` changed only by :meth:`update_target` (an
    exponential moving average of the online weights, :func:`course_lib.models.contrastive.momentum_update`,
    batch-normalisation statistics included) with momentum :math:`\tau` following :func:`cosine_momentum` from
    ``momentum`` to 1 over ``total_steps`` (constant ``momentum`` when ``total_steps`` is 0). Each step: two
    independent views; the loss (:meth:`objective`, :func:`course_lib.losses.byol_loss`) regresses the online
    prediction of each view onto the target projection of the other. There is no negative pair: the
    predictor and the slowly moving target prevent the collapse. SimSiam is the case ``momentum = 0``.

    ``call(images)`` returns the online encoder's representation in inference mode. Metrics: ``loss`` and
    ``std`` (:func:`course_lib.losses.embedding_std` of the online projections).

    Args:
        encoder, projection_head, predictor: the online network (e.g.
            :func:`course_lib.models.encoders.build_encoder28`, ``build_projection_head``, ``build_predictor``).
        augmenter: view generator (default :func:`course_lib.data.augment.build_augmenter`).
        momentum: base target momentum :math:`\tau_{base} \in [0, 1)`. BYOL used 0.996 for about 10^5 steps;
            runs of a few hundred steps need a faster target (0.9-0.99).
        total_steps: length of the cosine momentum schedule (the number of training steps), 0 for a constant.
        target_batch_stats: the target network normalises with the statistics of the current batch (True, as
            in the paper) or its moving statistics (False); see
            :func:`course_lib.models.contrastive.target_copy`.
        seed: seed of the default augmenter.

    Raises:
        ValueError: ``momentum`` outside [0, 1) or ``total_steps`` < 0.
    """

    METRICS = ("loss", "std")
    SUBMODELS = ("encoder", "projection_head", "predictor", "augmenter")

    def __init__(self, encoder, projection_head, predictor, augmenter=None, momentum: float = 0.99,
                 total_steps: int = 0, target_batch_stats: bool = True, seed: int = 0, **kwargs):
        if not 0.0 <= momentum < 1.0 or total_steps < 0:
            raise ValueError(f"need 0 <= momentum < 1 and total_steps >= 0, got {momentum}, {total_steps}")
        super().__init__(encoder, default_augmenter(encoder, augmenter, seed), seed=seed, **kwargs)
        self.projection_head, self.predictor = projection_head, predictor
        self.target_batch_stats = bool(target_batch_stats)
        self.target_encoder = target_copy(encoder, "target_", self.target_batch_stats)
        self.target_head = target_copy(projection_head, "target_", self.target_batch_stats)
        self.momentum, self.total_steps = float(momentum), int(total_steps)
        self.step_counter = self.add_weight(shape=(), name="step_counter", dtype="int32", trainable=False,
                                            initializer="zeros")

    def current_momentum(self):
        """The target momentum of the current step, a scalar float32 tensor."""
        if self.total_steps == 0:
            return ops.convert_to_tensor(self.momentum, "float32")
        return cosine_momentum(self.step_counter, self.total_steps, self.momentum)

    def update_target(self, momentum) -> None:
        """Move the target network towards the online network (:func:`contrastive.momentum_update`).

        Args:
            momentum: :math:`\\tau \\in [0, 1]`, a Python number or a scalar tensor (e.g. :meth:`current_momentum`).

        Raises:
            ValueError: a Python ``momentum`` outside [0, 1], or target and online networks with different
                numbers of weights (see :func:`~course_lib.models.contrastive.momentum_update`).
        """
        momentum_update(self.target_encoder.weights, self.encoder.weights, momentum)
        momentum_update(self.target_head.weights, self.projection_head.weights, momentum)

    def objective(self, p1, p2, z1, z2):
        """BYOL's loss between online predictions and target projections (:func:`course_lib.losses.byol_loss`).

        Args:
            p1, p2: online predictions for view 1 and view 2, float ``(N, d)``.
            z1, z2: target projections for view 1 and view 2, float ``(N, d)`` (no gradient flows into them).

        Returns:
            Scalar float tensor in [0, 4].

        Raises:
            ValueError: ``p1`` and ``z2``, or ``p2`` and ``z1``, are not 2-D or differ in shape.
        """
        return losses.byol_loss(p1, p2, z1, z2)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if training:
            self.update_target(self.current_momentum())
            self.step_counter.assign_add(1)
        view1, view2 = self.two_views(x)
        both = ops.concatenate([view1, view2], axis=0)
        z_online = self.projection_head(self.encoder(both, training=training), training=training)
        p1, p2 = ops.split(self.predictor(z_online, training=training), 2)
        target_mode = bool(training) and self.target_batch_stats
        z_target = self.target_head(self.target_encoder(both, training=target_mode), training=target_mode)
        t1, t2 = ops.split(ops.stop_gradient(z_target), 2)
        loss = self.objective(p1, p2, t1, t2)
        self.track(loss=loss, std=losses.embedding_std(ops.split(z_online, 2)[0]))
        return loss

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "total_steps": self.total_steps,
                "target_batch_stats": self.target_batch_stats}
