"""Day 07 self-checks: each passes a correct answer, fails known mistakes, says todo and spots the reference."""

import numpy as np
from keras import ops

from course_lib import losses
from course_lib.checks import day07 as checks
from course_lib.models import contrastive


def _todo(*args, **kwargs):
    raise NotImplementedError()


def _own_nt_xent(z1, z2, temperature=0.5):
    z = ops.concatenate([z1, z2], axis=0)
    z = z / ops.maximum(ops.norm(z, axis=1, keepdims=True), 1e-12)
    n2 = ops.shape(z)[0]
    logits = ops.where(ops.eye(n2, dtype="bool"), -1e9, ops.matmul(z, ops.transpose(z)) / temperature)
    partners = ops.concatenate([ops.arange(n2 // 2, n2), ops.arange(0, n2 // 2)])
    return ops.mean(ops.sparse_categorical_crossentropy(partners, logits, from_logits=True))


def test_nt_xent_check():
    assert checks.check_nt_xent(_own_nt_xent).passed

    def unmasked(z1, z2, temperature=0.5):  # the self-similarity stays in the denominator
        z = losses.l2_normalize(ops.concatenate([z1, z2], axis=0))
        n2 = ops.shape(z)[0]
        partners = ops.concatenate([ops.arange(n2 // 2, n2), ops.arange(0, n2 // 2)])
        logits = ops.matmul(z, ops.transpose(z)) / temperature
        return ops.mean(ops.sparse_categorical_crossentropy(partners, logits, from_logits=True))

    assert checks.check_nt_xent(unmasked).status == "fail"
    assert checks.check_nt_xent(_todo).status == "todo"
    assert checks.check_nt_xent(lambda a, b, t=0.5: losses.nt_xent_loss(a, b, t)).status == "reference"


class _Good(contrastive.SimCLR):
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        v1, v2 = self.two_views(x)
        a, b = ops.split(self.project(ops.concatenate([v1, v2], axis=0), training=training), 2, axis=0)
        loss = _own_nt_xent(a, b, self.temperature)
        self.track(loss=loss, accuracy=losses.contrastive_accuracy(a, b, self.temperature), std=losses.embedding_std(a))
        return loss


class _OneView(contrastive.SimCLR):  # one view compared with itself
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        v = self.augmenter(x, training=True)
        a = self.project(v, training=training)
        loss = _own_nt_xent(a, a, self.temperature)
        self.track(loss=loss, accuracy=losses.contrastive_accuracy(a, a, self.temperature), std=losses.embedding_std(a))
        return loss


class _NoTrack(contrastive.SimCLR):
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        v1, v2 = self.two_views(x)
        a, b = ops.split(self.project(ops.concatenate([v1, v2], axis=0), training=training), 2, axis=0)
        return _own_nt_xent(a, b, self.temperature)


class _Todo(contrastive.SimCLR):
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        raise NotImplementedError()


class _CallsLibrary(contrastive.SimCLR):
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return super().compute_loss(x, y, y_pred, sample_weight, training)


def test_simclr_step_check():
    assert checks.check_simclr_step(_Good).passed
    assert checks.check_simclr_step(_OneView).status == "fail"
    result = checks.check_simclr_step(_NoTrack)
    assert result.status == "fail" and "track" in result.message
    assert checks.check_simclr_step(_Todo).status == "todo"
    assert checks.check_simclr_step(_CallsLibrary).status == "reference"


def _own_share(z1, z2, temperature, k=5):
    u = np.concatenate([ops.convert_to_numpy(z1), ops.convert_to_numpy(z2)]).astype("float64")
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    n2 = len(u)
    keep = ~np.eye(n2, dtype=bool)
    keep[np.arange(n2), (np.arange(n2) + n2 // 2) % n2] = False
    s = np.where(keep, u @ u.T / temperature, -np.inf)
    w = np.exp(s - s.max(1, keepdims=True))
    w /= w.sum(1, keepdims=True)
    return float(np.sort(w, 1)[:, -k:].sum(1).mean())


def test_temperature_check():
    assert checks.check_hard_negative_share(_own_share).passed

    def partner_kept(z1, z2, temperature, k=5):  # the partner counted among the negatives
        u = np.concatenate([z1, z2]).astype("float64")
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        s = np.where(np.eye(len(u), dtype=bool), -np.inf, u @ u.T / temperature)
        w = np.exp(s - s.max(1, keepdims=True))
        w /= w.sum(1, keepdims=True)
        return float(np.sort(w, 1)[:, -k:].sum(1).mean())

    assert checks.check_hard_negative_share(partner_kept).status == "fail"
    assert checks.check_hard_negative_share(_todo).status == "todo"
    assert checks.check_hard_negative_share(checks.reference_hard_negative_share).status == "reference"
