"""Text corpora for Day 09 (masked language modeling), each with a fixed train / validation split.

Corpora (:func:`load_corpus`), each split once into a fixed train / validation split of paragraphs:

- ``pydoc`` (default, offline): English prose that ships with Python itself, the standard library's
  ``pydoc_data.topics`` (the text ``help()`` shows for keywords and topics). Paragraphs are cleaned
  (headings, grammar productions, interactive sessions and code blocks are dropped; see
  :func:`split_paragraphs`), exact duplicates removed, and each paragraph goes to the validation split
  when a SHA-1 hash of its text falls in the lowest ``validation_fraction`` of the hash range. The split
  depends only on the paragraph's text, never on its position, so it is the same on every run and
  every machine; the topics themselves differ a little between Python versions.
- ``imdb`` (network once, then cached): the 50,000 movie reviews of Maas et al., "Learning Word Vectors
  for Sentiment Analysis", ACL 2011, as ``keras.datasets.imdb`` distributes them (``imdb.npz`` of word ids
  and ``imdb_word_index.json``), cached under the course's data folder with hash verification. The
  official 25,000 / 25,000 split becomes train / validation. That version of the text is lower-cased
  and has no punctuation (``<br />`` survives as the word ``br``).
- any folder of ``.txt`` files (UTF-8), read recursively in sorted order, split into paragraphs at
  blank lines, then hash-split like ``pydoc``.

Labels for a downstream task (never used by the pretext task): a ``pydoc`` paragraph is labeled with the
part of the Python documentation its topic comes from (:data:`PYDOC_PARTS`: statements, expressions,
data model, built-in types, debugger), an IMDB review with its sentiment (negative / positive). A folder of
``.txt`` files has no labels.

Tokenisation is in :mod:`course_lib.data.tokenization`; the IMDB files are fetched and parsed by
:mod:`course_lib.data.downloads`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from course_lib.config import ConfigError
from course_lib.data import downloads
from course_lib.data.tokenization import UNK

CORPORA = ("pydoc", "imdb")
"""Named corpora; any existing folder path is accepted as well."""
DEFAULT_CORPUS = "pydoc"
VALIDATION_FRACTION = 0.1

PYDOC_PARTS = {
    # The Python Language Reference, chapters 7 "Simple statements" and 8 "Compound statements".
    "statements": ("assert", "assignment", "async", "augassign", "break", "class", "compound", "continue",
                   "del", "else", "for", "function", "global", "if", "import", "nonlocal", "pass", "raise",
                   "return", "try", "while", "with", "yield", "match", "type"),
    # The Language Reference, chapters 2 "Lexical analysis" (identifiers, literals) and 6 "Expressions".
    "expressions": ("atom-identifiers", "atom-literals", "attribute-references", "await", "binary", "bitwise",
                    "booleans", "calls", "comparisons", "conversions", "dict", "exprlists", "floating",
                    "id-classes", "identifiers", "imaginary", "in", "integers", "lambda", "lists", "numbers",
                    "operator-summary", "power", "shifting", "slicings", "strings", "subscriptions", "unary"),
    # The Language Reference, chapters 3 "Data model" and 4 "Execution model".
    "data model": ("attribute-access", "callable-types", "context-managers", "customization",
                   "dynamic-features", "exceptions", "execmodel", "naming", "numeric-types", "objects",
                   "sequence-types", "specialnames", "types"),
    # The Library Reference, "Built-in Types" and the "string" module's "Format String Syntax".
    "built-in types": ("bltin-code-objects", "bltin-ellipsis-object", "bltin-null-object", "bltin-type-objects",
                       "formatstrings", "specialattrs", "string-methods", "truth", "typesfunctions", "typesmapping",
                       "typesmethods", "typesmodules", "typesseq", "typesseq-mutable"),
    # The Library Reference, "pdb — The Python Debugger".
    "debugger": ("debugger",),
}
"""The label set of the ``pydoc`` downstream task: which part of the Python documentation a topic's section
belongs to (the chapter of docs.python.org it is taken from). A topic missing here (a newer Python may add
some) leaves its paragraphs unlabeled (-1)."""

IMDB_CLASSES = ("negative", "positive")


class CorpusUnavailable(RuntimeError):
    """A corpus cannot be read: a folder without usable ``.txt`` files, or IMDB not cached while offline."""


@dataclass(frozen=True)
class Corpus:
    """A text corpus with its fixed train / validation split.

    Attributes:
        name: ``"pydoc"``, ``"imdb"`` or the folder the text came from.
        train: training paragraphs (one ``str`` each, whitespace normalised).
        validation: validation paragraphs, disjoint from ``train``.
        description: one line saying where the text comes from.
    """

    name: str
    train: tuple[str, ...]
    validation: tuple[str, ...]
    description: str = ""
    class_names: tuple[str, ...] = ()
    train_labels: tuple[int, ...] = ()
    validation_labels: tuple[int, ...] = ()

    @property
    def has_labels(self) -> bool:
        """True when the paragraphs carry downstream labels (``pydoc``: documentation part; IMDB: sentiment)."""
        return bool(self.class_names)

    def labels(self, split: str = "train") -> np.ndarray:
        """int64 labels of ``split``'s paragraphs (indices into ``class_names``; -1 for an unlabeled paragraph).

        Raises:
            ValueError: an unknown split, or a corpus without labels (a folder of ``.txt`` files).
        """
        if split not in ("train", "validation"):
            raise ValueError(f"split must be 'train' or 'validation', got {split!r}")
        if not self.has_labels:
            raise ValueError(f"the corpus {self.name!r} has no labels (only pydoc and imdb have)")
        return np.asarray(getattr(self, f"{split}_labels"), dtype=np.int64)

    def n_words(self, split: str = "train") -> int:
        """Number of whitespace-separated words in ``split`` (``"train"`` or ``"validation"``).

        Raises:
            ValueError: ``split`` is neither ``"train"`` nor ``"validation"``.
        """
        if split not in ("train", "validation"):
            raise ValueError(f"split must be 'train' or 'validation', got {split!r}")
        return sum(len(p.split()) for p in getattr(self, split))

    def __repr__(self) -> str:
        return (f"Corpus({self.name!r}, train={len(self.train)} paragraphs / {self.n_words('train')} words, "
                f"validation={len(self.validation)} paragraphs / {self.n_words('validation')} words)")


# --------------------------------------------------------------------------------------------
# Choosing and loading a corpus
# --------------------------------------------------------------------------------------------

def resolve_corpus(corpus: str | os.PathLike | None = None) -> str:
    """Return the corpus to use: ``corpus``, else ``$COURSE_CORPUS``, else ``"pydoc"``.

    Names are case-insensitive; anything that is not a known name must be an existing folder
    (returned as an absolute path).

    Raises:
        ConfigError: neither a known corpus name nor an existing folder.
    """
    value = corpus if corpus is not None else os.environ.get("COURSE_CORPUS") or DEFAULT_CORPUS
    text = str(value).strip()
    if text.lower() in CORPORA:
        return text.lower()
    folder = Path(text).expanduser()
    if folder.is_dir():
        return str(folder.resolve())
    raise ConfigError(f"unknown corpus {text!r}: expected {', '.join(CORPORA)} or a folder of .txt files "
                      "(set the CORPUS parameter or the COURSE_CORPUS environment variable)")


def load_corpus(name: str | os.PathLike | None = None, max_train: int | None = None,
                max_validation: int | None = None, validation_fraction: float = VALIDATION_FRACTION,
                seed: int = 0, data_dir: str | os.PathLike | None = None, offline: bool | None = None) -> Corpus:
    """Load a corpus as paragraphs with its fixed train / validation split.

    Args:
        name: ``"pydoc"``, ``"imdb"``, a folder of ``.txt`` files, or None (``$COURSE_CORPUS``, default pydoc).
        max_train: keep at most this many training paragraphs, a seeded random subset in corpus order
            (None keeps all). Quick mode uses it on IMDB.
        max_validation: the same for the validation paragraphs.
        validation_fraction: share of paragraphs hashed into the validation split (pydoc and folders;
            IMDB keeps its official split), in (0, 1).
        seed: seed of the ``max_*`` subsets (the split itself never changes).
        data_dir: dataset cache folder for IMDB (default ``$COURSE_DATA_DIR`` or ``<project>/data``).
        offline: never download (default: True when ``$COURSE_OFFLINE`` is ``1``/``true``).

    Returns:
        A :class:`Corpus` with non-empty ``train`` and ``validation`` tuples.

    Raises:
        ConfigError: unknown corpus name.
        ValueError: ``validation_fraction`` outside (0, 1).
        CorpusUnavailable: no usable text, or too little of it to split.
        course_lib.data.downloads.DatasetUnavailable: IMDB is not cached and cannot be downloaded.
        course_lib.data.downloads.CorruptDataFile: a cached IMDB file has the wrong hash or content.
    """
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction!r}")
    name = resolve_corpus(name)
    class_names, train_labels, validation_labels = (), None, None
    if name == "imdb":
        train, validation, train_labels, validation_labels = load_imdb_reviews(
            data_dir=data_dir, offline=offline, return_labels=True)
        description = "IMDB movie reviews (keras.datasets version: lower-case, no punctuation), official split"
        class_names = IMDB_CLASSES
    else:
        if name == "pydoc":
            topic_of = pydoc_topics()
            paragraphs = list(topic_of)
            description = "Python's pydoc_data topics (the text behind help()), prose paragraphs"
        else:
            paragraphs = folder_paragraphs(name)
            description = f"paragraphs of the .txt files in {name}"
        train, validation = split_train_validation(paragraphs, validation_fraction)
        if not train or not validation:
            raise CorpusUnavailable(f"{name}: {len(paragraphs)} paragraph(s) are too few for a train / validation "
                                    f"split with validation_fraction={validation_fraction}; add more text")
        if name == "pydoc":
            class_names = tuple(PYDOC_PARTS)
            part_of = {topic: index for index, part in enumerate(PYDOC_PARTS.values()) for topic in part}
            train_labels = [part_of.get(topic_of[p], -1) for p in train]
            validation_labels = [part_of.get(topic_of[p], -1) for p in validation]
    keep_train = _subset(len(train), max_train, seed)
    keep_validation = _subset(len(validation), max_validation, seed + 1)
    pick = lambda items, keep: tuple(items[i] for i in keep) if items is not None else ()  # noqa: E731
    return Corpus(name, pick(train, keep_train), pick(validation, keep_validation), description, class_names,
                  tuple(int(v) for v in pick(train_labels, keep_train)),
                  tuple(int(v) for v in pick(validation_labels, keep_validation)))


def _subset(n_items: int, n: int | None, seed: int) -> np.ndarray:
    """Indices of the items kept: all, or a seeded random subset of ``n`` in corpus order."""
    if n is None or n >= n_items:
        return np.arange(n_items)
    if n < 1:
        raise ValueError(f"cannot keep {n} paragraphs: need at least 1")
    return np.sort(np.random.default_rng(seed).choice(n_items, size=int(n), replace=False))


# --------------------------------------------------------------------------------------------
# Paragraphs: cleaning and splitting
# --------------------------------------------------------------------------------------------

_UNDERLINE = re.compile(r"^\s*([*=\-~^\"'`#+])\1{2,}\s*$")  # heading underlines: ****, ====, ----
_WORD = re.compile(r"^[\W_]*[A-Za-z]+(?:['’\-][A-Za-z]+)*[\W_]*$")  # a word, possibly quoted / punctuated
_SENTENCE_END = re.compile(r"[A-Za-z0-9)\"'*’]\s*[.!?:]$")


def split_paragraphs(text: str, min_words: int = 8, min_word_fraction: float = 0.7,
                     prose_only: bool = True) -> list[str]:
    """Split text into paragraphs at blank lines and normalise whitespace.

    With ``prose_only`` (used for pydoc) a paragraph is kept only if it reads like prose: at least
    ``min_words`` words, no interactive session (``>>>``) or grammar rule (``::=``), at least
    ``min_word_fraction`` of its whitespace-separated tokens are words (letters, optionally quoted or
    followed by punctuation), and it ends like a sentence. Heading underlines (``****``, ``====``) are
    removed and a leading bullet (``* ``, ``- ``) is dropped. Without ``prose_only`` only the
    ``min_words`` rule applies.

    Args:
        text: the raw text.
        min_words: shortest paragraph kept, in words.
        min_word_fraction: with ``prose_only``, the minimum share of word-like tokens, in [0, 1].
        prose_only: apply the prose filter.

    Returns:
        The paragraphs in text order, each a single line with single spaces.
    """
    paragraphs = []
    for block in re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n")):
        lines = [line.strip() for line in block.splitlines() if line.strip() and not _UNDERLINE.match(line)]
        if not lines:
            continue
        paragraph = re.sub(r"^[*\-•] ", "", " ".join(" ".join(lines).split()))
        words = paragraph.split()
        if len(words) < min_words:
            continue
        if prose_only:
            if ">>>" in paragraph or "::=" in paragraph or not _SENTENCE_END.search(paragraph):
                continue
            if sum(bool(_WORD.match(w)) for w in words) < min_word_fraction * len(words):
                continue
        paragraphs.append(paragraph)
    return paragraphs


def pydoc_paragraphs() -> list[str]:
    """The prose paragraphs of ``pydoc_data.topics`` (topics in sorted order, duplicates removed).

    Returns:
        A list of paragraphs (about 1,150 paragraphs / 40,000 words with Python 3.11).

    Raises:
        CorpusUnavailable: this Python has no ``pydoc_data`` (some minimal distributions strip it).
    """
    return list(pydoc_topics())


def pydoc_topics() -> dict[str, str]:
    """Each prose paragraph of ``pydoc_data.topics`` with the topic it comes from, ``{paragraph: topic}``.

    Topics are read in sorted order and a paragraph that several topics share (``if`` repeats part of
    ``compound``) keeps the first; the dict's order is :func:`pydoc_paragraphs`'s.

    Raises:
        CorpusUnavailable: this Python has no ``pydoc_data`` (some minimal distributions strip it).
    """
    try:
        from pydoc_data import topics
    except ImportError as error:  # pragma: no cover - every CPython ships it
        raise CorpusUnavailable("this Python installation has no pydoc_data module; use CORPUS='imdb' or a "
                                "folder of .txt files") from error
    found: dict[str, str] = {}
    for key in sorted(topics.topics):
        for paragraph in split_paragraphs(topics.topics[key]):
            found.setdefault(paragraph, key)
    return found


def folder_paragraphs(folder: str | os.PathLike, min_words: int = 8) -> list[str]:
    """Paragraphs of every ``*.txt`` file under ``folder`` (recursively, files in sorted path order).

    Files are read as UTF-8 (undecodable bytes replaced); paragraphs are separated by blank lines and
    kept when they have at least ``min_words`` words; exact duplicates are removed.

    Raises:
        CorpusUnavailable: ``folder`` is not a folder, holds no ``.txt`` file, or no paragraph is long enough.
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise CorpusUnavailable(f"{root} is not a folder; CORPUS must be 'pydoc', 'imdb' or a folder of .txt files")
    files = sorted(p for p in root.rglob("*.txt") if p.is_file())
    if not files:
        raise CorpusUnavailable(f"{root} holds no .txt file (searched recursively)")
    found = []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        found.extend(split_paragraphs(text, min_words=min_words, prose_only=False))
    if not found:
        raise CorpusUnavailable(f"the {len(files)} .txt file(s) in {root} hold no paragraph of at least "
                                f"{min_words} words (paragraphs are separated by blank lines)")
    return list(dict.fromkeys(found))


def split_train_validation(paragraphs: list[str], validation_fraction: float = VALIDATION_FRACTION
                           ) -> tuple[list[str], list[str]]:
    """Fixed, order-independent split: a paragraph is validation iff its SHA-1 hash is in the lowest fraction.

    Duplicated paragraphs are kept once (so the same text can never be on both sides).

    Args:
        paragraphs: the paragraphs.
        validation_fraction: expected share of validation paragraphs, in (0, 1).

    Returns:
        ``(train, validation)`` lists, each in the original order.
    """
    threshold = int(validation_fraction * 2**32)
    train, validation = [], []
    for paragraph in dict.fromkeys(paragraphs):
        bucket = int.from_bytes(hashlib.sha1(paragraph.encode("utf-8")).digest()[:4], "big")
        (validation if bucket < threshold else train).append(paragraph)
    return train, validation


# --------------------------------------------------------------------------------------------
# IMDB through the keras.datasets files
# --------------------------------------------------------------------------------------------

def load_imdb_reviews(data_dir: str | os.PathLike | None = None, offline: bool | None = None,
                      files: tuple[downloads.RemoteFile, ...] | None = None, return_labels: bool = False):
    """The IMDB reviews as text: ``(train_reviews, test_reviews)``, 25,000 each in the real files.

    With ``return_labels``: ``(train_reviews, test_reviews, train_labels, test_labels)``, the labels lists
    of ints (0 negative, 1 positive; -1 where the file has no labels).

    Fetches (once) the two files ``keras.datasets.imdb`` uses into ``<data_dir>/imdb/`` with
    :func:`course_lib.data.downloads.fetch_file` (hash-verified; offline and missing, the error says which file to
    put where), then decodes each review's word ids with the word index.

    Args:
        data_dir: cache folder (default ``$COURSE_DATA_DIR`` or ``<project>/data``).
        offline: never download (default from ``$COURSE_OFFLINE``).
        files: ``(npz, word_index)`` remote files (default :data:`course_lib.data.downloads.IMDB_FILES`; tests pass small ones).

    Raises:
        course_lib.data.downloads.DatasetUnavailable: a file is missing and cannot be downloaded.
        course_lib.data.downloads.CorruptDataFile: wrong hash, or a file that does not parse.
    """
    paths = downloads.fetch("imdb", data_dir=data_dir, offline=offline, files=files or downloads.IMDB_FILES)
    arrays = downloads.read_imdb_npz(paths[0])
    try:
        word_index = json.loads(Path(paths[1]).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise downloads.CorruptDataFile(f"{paths[1]} is not a JSON word index: {error}") from error
    if not isinstance(word_index, dict):
        raise downloads.CorruptDataFile(f"{paths[1]} should map words to ids, got {type(word_index).__name__}")
    id_to_word = {int(i): str(w) for w, i in word_index.items()}
    train = [_decode_review(r, id_to_word) for r in arrays["x_train"]]
    test = [_decode_review(r, id_to_word) for r in arrays["x_test"]]
    if not return_labels:
        return train, test
    labels = [[int(v) for v in np.asarray(arrays[key]).ravel()] if key in arrays else [-1] * len(reviews)
              for key, reviews in (("y_train", train), ("y_test", test))]
    return train, test, labels[0], labels[1]


def _decode_review(ids, id_to_word: dict[int, str]) -> str:
    # In imdb.npz a word's id is its rank in the word index (keras adds index_from=3 only when loading).
    return " ".join(id_to_word.get(int(i), UNK) for i in ids)
