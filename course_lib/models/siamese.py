"""Non-contrastive self-supervised learning (Day 08): no negatives, a predictor and an asymmetry prevent collapse.

- :class:`SimSiam` (Chen & He, "Exploring Simple Siamese Representation Learning", CVPR 2021): a predictor on
  one branch and a stop-gradient on the other.
"""

from __future__ import annotations

import keras
from keras import ops

from course_lib import losses
from course_lib.models.base import SelfSupervisedModel
from course_lib.models.contrastive import default_augmenter


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
