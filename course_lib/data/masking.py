"""BERT's masking rule and masked-LM batches (Day 09), in NumPy, seeded by a ``np.random.Generator``.

BERT (Devlin, Chang, Lee & Toutanova, NAACL-HLT 2019) selects 15 % of the non-special tokens for
prediction; of those 80 % become ``[MASK]``, 10 % a random token and 10 % stay unchanged, and the loss is
computed on the selected positions only:

- :func:`select_tokens`, :func:`corrupt_tokens`, :func:`mask_tokens`: the rule;
- :func:`selection_to_positions`, :func:`make_mlm_batch`: the input format of
  ``keras_hub.layers.MaskedLMHead`` (padded ``mask_positions`` with ``mask_weights``), with any masking
  function (a student's included, capped by :func:`cap_selections`) and the loss on the selected positions
  (BERT) or on every position (the variant Day 09 trains for comparison);
- :class:`MaskedLMBatches`: a ``keras.utils.PyDataset`` drawing fresh masks for every batch (dynamic masking);
- :func:`masking_statistics`, :func:`keras_hub_masking`: comparing the rule with keras_hub's
  ``MaskedLMMaskGenerator``, the reference implementation.

Token ids follow :mod:`course_lib.data.tokenization`: ``[PAD]`` 0, ``[CLS]`` 1, ``[SEP]`` 2, ``[UNK]`` 3,
``[MASK]`` 4.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from course_lib.data.tokenization import MASK_ID, SPECIAL_TOKENS

SPECIAL_IDS = tuple(range(len(SPECIAL_TOKENS)))
"""Ids that are never selected for prediction: [PAD], [CLS], [SEP], [UNK], [MASK]."""
SELECTION_RATE = 0.15
MASK_TOKEN_RATE = 0.8
RANDOM_TOKEN_RATE = 0.1


# --------------------------------------------------------------------------------------------
# The masking rule
# --------------------------------------------------------------------------------------------

def default_max_selections(sequence_length: int, selection_rate: float = SELECTION_RATE) -> int:
    """Room for predictions per sequence: ``ceil(1.5 * selection_rate * sequence_length)`` (15 for L = 64).

    The expected number of selected tokens is ``selection_rate * L``; the 50 % margin means the cap of
    :func:`select_tokens` rarely bites (BERT's own budget was 20 predictions for 128 tokens).
    """
    return max(1, math.ceil(1.5 * selection_rate * sequence_length))


def select_tokens(token_ids, rng: np.random.Generator, selection_rate: float = SELECTION_RATE,
                  special_token_ids=SPECIAL_IDS, max_selections: int | None = None) -> np.ndarray:
    """Choose the positions to predict: each non-special token independently with probability ``selection_rate``.

    This is what ``keras_hub.layers.MaskedLMMaskGenerator`` does when called eagerly; BERT's original data
    pipeline instead picked exactly ``round(selection_rate * n)`` of the ``n`` eligible tokens of a sequence.
    Both select 15 % on average.

    Args:
        token_ids: int array ``(batch, sequence_length)`` (or ``(sequence_length,)``).
        rng: the random generator (the only source of randomness).
        selection_rate: probability that an eligible token is selected, in [0, 1].
        special_token_ids: ids never selected ([PAD], [CLS], [SEP], [UNK], [MASK] by default).
        max_selections: keep at most this many per sequence (a random subset of the selected ones);
            None for no cap.

    Returns:
        bool array shaped like ``token_ids``; ``False`` wherever ``token_ids`` is a special id.
    """
    token_ids = np.asarray(token_ids)
    eligible = ~np.isin(token_ids, np.asarray(special_token_ids))
    selected = eligible & (rng.random(token_ids.shape) < selection_rate)
    if max_selections is not None and selected.ndim == 2:
        # Rank the selected positions of each row in random order and keep the first max_selections.
        keys = np.where(selected, rng.random(selected.shape), np.inf)
        rank = np.argsort(np.argsort(keys, axis=1, kind="stable"), axis=1, kind="stable")
        selected &= rank < max_selections
    return selected


def corrupt_tokens(token_ids, selected, rng: np.random.Generator, vocabulary_size: int,
                   mask_token_id: int = MASK_ID, special_token_ids=SPECIAL_IDS,
                   mask_token_rate: float = MASK_TOKEN_RATE, random_token_rate: float = RANDOM_TOKEN_RATE
                   ) -> np.ndarray:
    """Replace the selected tokens: ``[MASK]`` with probability 0.8, a random token 0.1, unchanged 0.1.

    Random replacements are drawn uniformly from the non-special ids (so a random ``[PAD]`` or ``[MASK]``
    can never appear). Unselected positions are copied unchanged.

    Args:
        token_ids: int array ``(batch, sequence_length)``.
        selected: bool array of the same shape, from :func:`select_tokens`.
        rng: the random generator.
        vocabulary_size: ``V``; random ids are in ``[0, V)`` minus ``special_token_ids``.
        mask_token_id: id of ``[MASK]``.
        special_token_ids: ids never used as random replacements.
        mask_token_rate, random_token_rate: the 80 / 10 split (the rest stays unchanged); each in [0, 1],
            summing to at most 1.

    Returns:
        A new int32 array shaped like ``token_ids`` (the input is not modified).

    Raises:
        ValueError: rates outside [0, 1] or summing to more than 1; shapes that differ.
    """
    if not (0 <= mask_token_rate <= 1 and 0 <= random_token_rate <= 1
            and mask_token_rate + random_token_rate <= 1 + 1e-9):
        raise ValueError(f"need 0 <= rates and mask_token_rate + random_token_rate <= 1, got "
                         f"{mask_token_rate}, {random_token_rate}")
    token_ids = np.asarray(token_ids)
    selected = np.asarray(selected, dtype=bool)
    if selected.shape != token_ids.shape:
        raise ValueError(f"selected {selected.shape} must have the shape of token_ids {token_ids.shape}")
    action = rng.random(token_ids.shape)
    corrupted = token_ids.astype(np.int32, copy=True)
    corrupted[selected & (action < mask_token_rate)] = mask_token_id
    to_random = selected & (action >= mask_token_rate) & (action < mask_token_rate + random_token_rate)
    ordinary = np.setdiff1d(np.arange(vocabulary_size), np.asarray(special_token_ids))
    corrupted[to_random] = rng.choice(ordinary, size=int(to_random.sum()))
    return corrupted


def mask_tokens(token_ids, rng: np.random.Generator, vocabulary_size: int, mask_token_id: int = MASK_ID,
                special_token_ids=SPECIAL_IDS, selection_rate: float = SELECTION_RATE,
                mask_token_rate: float = MASK_TOKEN_RATE, random_token_rate: float = RANDOM_TOKEN_RATE,
                max_selections: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """BERT's masking rule: :func:`select_tokens` then :func:`corrupt_tokens` (Devlin et al., NAACL-HLT 2019).

    Args:
        token_ids: int array ``(batch, sequence_length)`` (or ``(sequence_length,)``) of original ids.
        rng: the random generator (the only source of randomness).
        vocabulary_size: ``V``; random replacements are drawn from ``[0, V)`` minus ``special_token_ids``.
        mask_token_id: id of ``[MASK]``.
        special_token_ids: ids never selected and never used as random replacements.
        selection_rate: probability that an eligible token is selected, in [0, 1] (BERT: 0.15).
        mask_token_rate, random_token_rate: shares of the selected tokens that become ``[MASK]`` (0.8) and a
            random token (0.1); each in [0, 1], summing to at most 1; the rest stays unchanged.
        max_selections: at most this many selected positions per row (2-D input only); None for no cap.

    Returns:
        ``(masked_ids, selected)``: int32 model input shaped like ``token_ids``, and the bool array of
        positions whose original token must be predicted (the only positions that enter the loss).

    Raises:
        ValueError: rates outside [0, 1] or ``mask_token_rate + random_token_rate`` > 1; or (from NumPy) a
            random replacement is due but every id in ``[0, V)`` is special.
    """
    selected = select_tokens(token_ids, rng, selection_rate, special_token_ids, max_selections)
    masked = corrupt_tokens(token_ids, selected, rng, vocabulary_size, mask_token_id, special_token_ids,
                            mask_token_rate, random_token_rate)
    return masked, selected


def selection_to_positions(selected, token_ids, max_selections: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Convert a selection mask into ``MaskedLMHead`` targets padded to ``max_selections`` per row.

    Args:
        selected: bool ``(batch, L)`` with at most ``max_selections`` ``True`` per row.
        token_ids: the ORIGINAL ids ``(batch, L)`` (the targets).
        max_selections: ``P``.

    Returns:
        ``(mask_positions, mask_ids, mask_weights)``: int32 ``(batch, P)`` positions in increasing order
        (padding slots point at position 0), int32 ``(batch, P)`` original ids (0 in padding slots),
        float32 ``(batch, P)`` weights (1 for a real prediction, 0 for padding).

    Raises:
        ValueError: a row selects more than ``max_selections`` positions.
    """
    selected = np.asarray(selected, dtype=bool)
    counts = selected.sum(axis=1)
    if counts.size and counts.max() > max_selections:
        raise ValueError(f"a row selects {counts.max()} positions, more than max_selections={max_selections}")
    batch, length = selected.shape
    # Stable sort puts the selected positions first, in increasing order.
    order = np.argsort(~selected, axis=1, kind="stable")[:, :max_selections]
    if order.shape[1] < max_selections:  # P > L: pad the columns
        order = np.pad(order, ((0, 0), (0, max_selections - order.shape[1])))
    weights = (np.arange(max_selections)[None, :] < counts[:, None]).astype(np.float32)
    positions = np.where(weights > 0, order, 0).astype(np.int32)
    ids = np.where(weights > 0, np.take_along_axis(np.asarray(token_ids), positions, axis=1), 0).astype(np.int32)
    return positions, ids, weights


LOSS_POSITIONS = ("selected", "all")
"""Where the loss is computed: BERT's ``"selected"`` positions, or ``"all"`` real (non-special) positions."""


def cap_selections(token_ids, masked_ids, selected, rng: np.random.Generator, max_selections: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Keep at most ``max_selections`` selected positions per row; the dropped ones get their original token.

    A masking function that selects every token independently can, by chance, select more tokens in a row
    than the ``P`` slots of the ``MaskedLMHead``; this keeps a random subset of them (the same cap as
    :func:`select_tokens`) and undoes the corruption of the positions that are dropped.

    Args:
        token_ids: int ``(batch, L)`` original ids.
        masked_ids: int ``(batch, L)`` corrupted ids from a masking function.
        selected: bool ``(batch, L)`` selected positions.
        rng: the random generator.
        max_selections: ``P``.

    Returns:
        ``(masked_ids, selected)``: new arrays, at most ``max_selections`` ``True`` per row.
    """
    token_ids = np.asarray(token_ids)
    selected = np.asarray(selected, dtype=bool)
    masked_ids = np.asarray(masked_ids)
    if selected.sum(axis=1).max(initial=0) <= max_selections:
        return masked_ids.astype(np.int32, copy=True), selected.copy()
    keys = np.where(selected, rng.random(selected.shape), np.inf)
    rank = np.argsort(np.argsort(keys, axis=1, kind="stable"), axis=1, kind="stable")
    kept = selected & (rank < max_selections)
    return np.where(kept | ~selected, masked_ids, token_ids).astype(np.int32), kept


def make_mlm_batch(token_ids, rng: np.random.Generator, vocabulary_size: int, max_selections: int,
                   mask_token_rate: float = MASK_TOKEN_RATE, random_token_rate: float = RANDOM_TOKEN_RATE,
                   selection_rate: float = SELECTION_RATE, mask_fn=None, loss_positions: str = "selected"):
    """One masked-LM batch in Keras ``fit`` format: ``(inputs, targets, sample_weight)``.

    Args:
        token_ids: int ``(B, L)`` original ids.
        rng: the random generator of this batch.
        vocabulary_size: ``V``.
        max_selections: ``P``, prediction slots per sequence (with ``loss_positions="all"``: ``L``).
        mask_token_rate, random_token_rate: the corruption of the selected tokens (library rule only).
        selection_rate: share of the ordinary tokens selected.
        mask_fn: a masking function with the signature of :func:`mask_tokens`,
            ``mask_fn(token_ids, rng, vocabulary_size, mask_token_id=..., special_token_ids=...,
            selection_rate=...) -> (masked_ids, selected)`` (for example a student's); None uses
            :func:`mask_tokens` with the rates above. Its selection is capped to ``max_selections`` per row
            (:func:`cap_selections`).
        loss_positions: ``"selected"`` (BERT: the loss sees only the selected positions) or ``"all"`` (every
            real, non-special position of the original sequence is a target, corrupted or not; then
            ``max_selections`` must be at least the longest row's number of real tokens).

    Returns:
        ``({"token_ids": int32 (B, L), "mask_positions": int32 (B, P)}, mask_ids int32 (B, P),
        mask_weights float32 (B, P))``.

    Raises:
        ValueError: an unknown ``loss_positions``, or a row with more targets than ``max_selections``.
    """
    if loss_positions not in LOSS_POSITIONS:
        raise ValueError(f"loss_positions must be one of {LOSS_POSITIONS}, got {loss_positions!r}")
    token_ids = np.asarray(token_ids)
    if mask_fn is None:
        masked, selected = mask_tokens(token_ids, rng, vocabulary_size, selection_rate=selection_rate,
                                       mask_token_rate=mask_token_rate, random_token_rate=random_token_rate,
                                       max_selections=max_selections if loss_positions == "selected" else None)
    else:
        masked, selected = mask_fn(token_ids, rng, vocabulary_size, mask_token_id=MASK_ID,
                                   special_token_ids=SPECIAL_IDS, selection_rate=selection_rate)
        if loss_positions == "selected":
            masked, selected = cap_selections(token_ids, masked, selected, rng, max_selections)
        masked = np.asarray(masked, dtype=np.int32)
    targets = selected if loss_positions == "selected" else ~np.isin(token_ids, np.asarray(SPECIAL_IDS))
    positions, ids, weights = selection_to_positions(targets, token_ids, max_selections)
    return {"token_ids": masked, "mask_positions": positions}, ids, weights


class MaskedLMBatches(keras.utils.PyDataset):
    """Batches of freshly masked sequences for ``model.fit`` (dynamic masking: new masks every epoch).

    Batch ``i`` of epoch ``e`` uses ``np.random.default_rng([seed, e, i])``, so a run is reproducible and
    every epoch sees different masks (and, with ``shuffle``, a different order).

    Args:
        token_ids: int array ``(n, L)`` from :func:`course_lib.data.tokenization.encode`.
        vocabulary_size: ``V``.
        batch_size: sequences per batch.
        max_selections: ``P``, predictions per sequence (default :func:`default_max_selections` of the
            selection rate; ``L`` when ``loss_positions="all"``).
        seed: base seed.
        shuffle: reshuffle the sequences every epoch (training); False keeps the order (validation).
        mask_token_rate, random_token_rate: the masking rule (defaults 0.8 / 0.1).
        drop_remainder: skip the last, smaller batch (with ``shuffle`` other sequences fall there next epoch);
            every batch then has the same shape, so the training step is traced once.
        mask_fn: the masking function (see :func:`make_mlm_batch`; default :func:`mask_tokens`).
        selection_rate: share of the ordinary tokens selected (BERT: 0.15).
        loss_positions: ``"selected"`` (BERT) or ``"all"`` (see :func:`make_mlm_batch`).
        **kwargs: ``keras.utils.PyDataset`` options (``workers``, ...).

    Raises:
        ValueError: ``token_ids`` is not a non-empty 2-D array, ``drop_remainder`` leaves no batch, or an
            unknown ``loss_positions``.
    """

    def __init__(self, token_ids, vocabulary_size: int, batch_size: int = 32, max_selections: int | None = None,
                 seed: int = 0, shuffle: bool = True, mask_token_rate: float = MASK_TOKEN_RATE,
                 random_token_rate: float = RANDOM_TOKEN_RATE, drop_remainder: bool = False, mask_fn=None,
                 selection_rate: float = SELECTION_RATE, loss_positions: str = "selected", **kwargs):
        super().__init__(**kwargs)
        self.token_ids = np.asarray(token_ids, dtype=np.int32)
        if self.token_ids.ndim != 2 or len(self.token_ids) == 0:
            raise ValueError(f"token_ids must be a non-empty (n, L) array, got shape {self.token_ids.shape}")
        if loss_positions not in LOSS_POSITIONS:
            raise ValueError(f"loss_positions must be one of {LOSS_POSITIONS}, got {loss_positions!r}")
        self.vocabulary_size = int(vocabulary_size)
        self.batch_size = int(batch_size)
        self.selection_rate = float(selection_rate)
        self.loss_positions = loss_positions
        length = self.token_ids.shape[1]
        self.max_selections = max_selections or (
            default_max_selections(length, self.selection_rate) if loss_positions == "selected" else length)
        self.seed, self.shuffle = int(seed), bool(shuffle)
        self.mask_token_rate, self.random_token_rate = mask_token_rate, random_token_rate
        self.mask_fn = mask_fn
        self.drop_remainder = bool(drop_remainder)
        if self.drop_remainder and len(self.token_ids) < self.batch_size:
            raise ValueError(f"drop_remainder with {len(self.token_ids)} sequences < batch_size {self.batch_size}")
        self.epoch = 0
        self._order = self._make_order()

    def _make_order(self) -> np.ndarray:
        n = len(self.token_ids)
        return np.random.default_rng([self.seed, self.epoch, 1 << 20]).permutation(n) if self.shuffle else np.arange(n)

    def __len__(self) -> int:
        if self.drop_remainder:
            return len(self.token_ids) // self.batch_size
        return math.ceil(len(self.token_ids) / self.batch_size)

    def __getitem__(self, index: int):
        rows = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        return make_mlm_batch(self.token_ids[rows], rng, self.vocabulary_size, self.max_selections,
                              self.mask_token_rate, self.random_token_rate, self.selection_rate, self.mask_fn,
                              self.loss_positions)

    def on_epoch_end(self) -> None:
        """Advance to the next epoch: new masks for every batch and, with ``shuffle``, a new order."""
        self.epoch += 1
        self._order = self._make_order()


# --------------------------------------------------------------------------------------------
# Comparing masking implementations
# --------------------------------------------------------------------------------------------

def masking_statistics(token_ids, masked_ids, selected, mask_token_id: int = MASK_ID,
                       special_token_ids=SPECIAL_IDS) -> dict:
    """Summary statistics of one masking draw, to compare implementations.

    Args:
        token_ids: the original int ids ``(batch, L)``.
        masked_ids: the corrupted ids, same shape.
        selected: bool, same shape: the positions to predict.
        mask_token_id, special_token_ids: as in :func:`mask_tokens`.

    Returns:
        dict with ``selection_rate`` (selected / eligible), ``mask_share``, ``random_share`` and
        ``unchanged_share`` (fractions of the selected positions that became ``[MASK]``, another token, or
        stayed), ``n_selected``, ``special_selected`` (selected special positions, must be 0) and
        ``changed_outside`` (unselected positions whose id changed, must be 0).
    """
    token_ids, masked_ids = np.asarray(token_ids), np.asarray(masked_ids)
    selected = np.asarray(selected, dtype=bool)
    special = np.isin(token_ids, np.asarray(special_token_ids))
    n_selected = int(selected.sum())
    before, after = token_ids[selected], masked_ids[selected]
    denominator = max(n_selected, 1)
    return {"selection_rate": n_selected / max(int((~special).sum()), 1),
            "mask_share": float(np.sum(after == mask_token_id)) / denominator,
            "random_share": float(np.sum((after != mask_token_id) & (after != before))) / denominator,
            "unchanged_share": float(np.sum(after == before)) / denominator,
            "n_selected": n_selected,
            "special_selected": int((selected & special).sum()),
            "changed_outside": int(np.sum((masked_ids != token_ids) & ~selected))}


def keras_hub_masking(token_ids, vocabulary_size: int, seed: int = 0, mask_token_id: int = MASK_ID,
                      special_token_ids=SPECIAL_IDS, selection_rate: float = SELECTION_RATE
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The same rule applied by ``keras_hub.layers.MaskedLMMaskGenerator`` (the reference implementation).

    Called eagerly the layer runs its pure-Python path, which draws from Python's ``random`` module; that
    module is seeded with ``seed`` here and its previous state restored afterwards.

    Args:
        token_ids: int array ``(batch, L)`` of original ids (cast to int32).
        vocabulary_size: ``V``.
        seed: seed of Python's ``random`` for this call.
        mask_token_id: id of ``[MASK]``.
        special_token_ids: ids never selected (the layer's ``unselectable_token_ids``).
        selection_rate: the layer's ``mask_selection_rate``; the 80 / 10 / 10 split is fixed
            (:data:`MASK_TOKEN_RATE`, :data:`RANDOM_TOKEN_RATE`).

    Returns:
        ``(masked_ids, selected)`` as :func:`mask_tokens` returns them: int32 and bool arrays ``(batch, L)``.
    """
    import random

    import keras_hub

    token_ids = np.asarray(token_ids, dtype=np.int32)
    generator = keras_hub.layers.MaskedLMMaskGenerator(
        vocabulary_size=vocabulary_size, mask_selection_rate=selection_rate, mask_token_id=mask_token_id,
        unselectable_token_ids=list(special_token_ids), mask_token_rate=MASK_TOKEN_RATE,
        random_token_rate=RANDOM_TOKEN_RATE)
    state = random.getstate()
    random.seed(seed)
    try:
        out = generator(token_ids.tolist())
    finally:
        random.setstate(state)
    masked = np.asarray(keras.ops.convert_to_numpy(out["token_ids"]) if not isinstance(out["token_ids"], list)
                        else out["token_ids"], dtype=np.int32).reshape(token_ids.shape)
    positions = out["mask_positions"]
    if not isinstance(positions, list):
        positions = keras.ops.convert_to_numpy(positions).tolist()
    selected = np.zeros(token_ids.shape, dtype=bool)
    for row, cols in enumerate(positions):
        selected[row, list(cols)] = True
    return masked, selected
