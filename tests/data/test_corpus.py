"""Unit tests for course_lib.data.corpus: corpora (pydoc, a folder of .txt files, IMDB from small files made
here and served from file:// URLs) and their fixed split."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from course_lib.config import ConfigError
from course_lib.data import corpus as corpora
from course_lib.data import downloads
from course_lib.data.downloads import CorruptDataFile, DatasetUnavailable, RemoteFile


def make_text_folder(folder: Path, sentences, n_paragraphs: int = 60) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "nested").mkdir(exist_ok=True)
    paragraphs = [f"{sentences[i % 5]} This is paragraph number {i} of the test corpus." for i in range(n_paragraphs)]
    half = n_paragraphs // 2
    (folder / "a.txt").write_text("\n\n".join(paragraphs[:half]) + "\n", encoding="utf-8")
    (folder / "nested" / "b.txt").write_text("\n\n".join(paragraphs[half:]) + "\n\nshort line\n", encoding="utf-8")
    (folder / "ignored.md").write_text("This markdown file has enough words but is not a text file at all.")
    return folder


# --- paragraphs and the split -------------------------------------------------------------------

def test_split_paragraphs_prose_filter():
    raw = ("The \"if\" statement\n"
           "******************\n\n"
           "The \"if\" statement is used for conditional\nexecution of a suite of statements.\n\n"
           "   if_stmt ::= \"if\" assignment_expression \":\" suite\n\n"
           "   >>> print(1 + 1)\n   2\n\n"
           "   x = [f(a, b) for a, b in zip(aa, bb) if a > b and b < 3] + {1: 2}\n\n"
           "* A bulleted item that is long enough to count as prose text.\n\n"
           "Too short.\n")
    assert corpora.split_paragraphs(raw) == [
        "The \"if\" statement is used for conditional execution of a suite of statements.",
        "A bulleted item that is long enough to count as prose text."]
    loose = corpora.split_paragraphs(raw, min_words=3, prose_only=False)
    assert any("::=" in p for p in loose) and any(">>>" in p for p in loose) and len(loose) == 6


def test_split_is_fixed_disjoint_and_order_independent(sentences):
    paragraphs = [f"paragraph {i} " + sentences[i % 5] for i in range(2000)]
    train, validation = corpora.split_train_validation(paragraphs, 0.1)
    assert not set(train) & set(validation)
    assert len(train) + len(validation) == 2000
    assert 150 < len(validation) < 250  # about 10 %
    shuffled = list(np.random.default_rng(0).permutation(paragraphs))
    train2, validation2 = corpora.split_train_validation(shuffled + paragraphs[:50], 0.1)  # order + duplicates
    assert set(validation2) == set(validation) and set(train2) == set(train)
    assert len(train2) + len(validation2) == 2000  # duplicates kept once


def test_pydoc_corpus():
    corpus = corpora.load_corpus("pydoc")
    assert corpus.name == "pydoc"
    assert len(corpus.train) > 500 and len(corpus.validation) > 40
    assert not set(corpus.train) & set(corpus.validation)
    assert 0.05 < len(corpus.validation) / (len(corpus.train) + len(corpus.validation)) < 0.15
    assert corpus.n_words("train") > 20_000
    assert not any(">>>" in p or "::=" in p for p in corpus.train)
    assert "pydoc" in repr(corpus) and "words" in repr(corpus)
    again = corpora.load_corpus()  # the default
    assert again.train == corpus.train and again.validation == corpus.validation
    with pytest.raises(ValueError, match="split"):
        corpus.n_words("test")


def test_max_train_subsets_are_seeded():
    a = corpora.load_corpus("pydoc", max_train=100, max_validation=20, seed=0)
    b = corpora.load_corpus("pydoc", max_train=100, max_validation=20, seed=0)
    c = corpora.load_corpus("pydoc", max_train=100, max_validation=20, seed=3)
    assert len(a.train) == 100 and len(a.validation) == 20
    assert a.train == b.train and a.train != c.train
    full = set(corpora.load_corpus("pydoc").train)
    assert set(a.train) <= full


def test_folder_corpus(tmp_path, sentences):
    folder = make_text_folder(tmp_path / "texts", sentences)
    corpus = corpora.load_corpus(str(folder))
    assert corpus.name == str(folder.resolve())
    everything = corpus.train + corpus.validation
    assert len(everything) == 60  # the 'short line' is dropped, the .md file ignored
    assert all("paragraph number" in p for p in everything)
    assert len(corpus.validation) >= 1 and len(corpus.train) >= 40


def test_corpus_from_env(tmp_path, monkeypatch, sentences):
    folder = make_text_folder(tmp_path / "texts", sentences)
    monkeypatch.setenv("COURSE_CORPUS", str(folder))
    assert corpora.resolve_corpus() == str(folder.resolve())
    assert corpora.load_corpus().name == str(folder.resolve())
    monkeypatch.setenv("COURSE_CORPUS", "PyDoc")
    assert corpora.resolve_corpus() == "pydoc"
    monkeypatch.setenv("COURSE_CORPUS", "wikipedia")
    with pytest.raises(ConfigError, match="wikipedia"):
        corpora.load_corpus()


def test_folder_errors(tmp_path, sentences):
    (tmp_path / "empty").mkdir()
    with pytest.raises(corpora.CorpusUnavailable, match="no .txt"):
        corpora.load_corpus(str(tmp_path / "empty"))
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "a.txt").write_text("too short\n\nalso short\n")
    with pytest.raises(corpora.CorpusUnavailable, match="no paragraph"):
        corpora.load_corpus(str(tmp_path / "tiny"))
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "a.txt").write_text(sentences[0])
    with pytest.raises(corpora.CorpusUnavailable, match="too few"):
        corpora.load_corpus(str(tmp_path / "one"))
    with pytest.raises(ValueError, match="validation_fraction"):
        corpora.load_corpus("pydoc", validation_fraction=1.5)


# --- IMDB through the keras.datasets files, on small files ---------------------------------------

def make_imdb(server: Path):
    words = ["the", "movie", "was", "great", "bad", "acting", "plot", "and", "i", "loved", "it"]
    word_index = {w: i + 1 for i, w in enumerate(words)}  # ranks start at 1, as in the real file
    rng = np.random.default_rng(0)

    def reviews(n):
        out = np.empty(n, dtype=object)
        for i in range(n):
            out[i] = [int(t) for t in rng.integers(1, len(words) + 1, size=int(rng.integers(5, 12)))]
        return out

    x_train, x_test = reviews(30), reviews(20)
    x_train[0] = [1, 2, 3, 4]  # "the movie was great"
    npz = server / "imdb.npz"
    np.savez(npz, x_train=x_train, y_train=np.arange(30) % 2, x_test=x_test, y_test=np.arange(20) % 2)
    index = server / "imdb_word_index.json"
    index.write_text(json.dumps(word_index), encoding="utf-8")
    files = (RemoteFile("imdb.npz", npz.as_uri(), hashlib.sha256(npz.read_bytes()).hexdigest()),
             RemoteFile("imdb_word_index.json", index.as_uri(), hashlib.md5(index.read_bytes()).hexdigest()))
    return files, (x_train, x_test)


def test_imdb_download_cache_and_decode(tmp_path, monkeypatch):
    server = tmp_path / "server"
    server.mkdir()
    files, (x_train, x_test) = make_imdb(server)
    cache = tmp_path / "cache"
    train, test = corpora.load_imdb_reviews(data_dir=cache, offline=False, files=files)
    assert len(train) == 30 and len(test) == 20
    assert train[0] == "the movie was great"
    assert len(test[3].split()) == len(x_test[3])
    assert (cache / "imdb" / "imdb.npz").exists() and (cache / "imdb" / "imdb_word_index.json").exists()
    # cached now: works offline, even with the server gone
    for f in server.iterdir():
        f.unlink()
    again, _ = corpora.load_imdb_reviews(data_dir=cache, offline=True, files=files)
    assert again == train
    # through load_corpus: official split as train / validation, with subsetting
    monkeypatch.setattr(downloads, "IMDB_FILES", files)
    corpus = corpora.load_corpus("imdb", data_dir=cache, offline=True, max_train=10)
    assert len(corpus.train) == 10 and len(corpus.validation) == 20
    assert set(corpus.train) <= set(train)
    # the sentiment labels travel with the reviews (the subset included)
    _, _, y_train, y_test = corpora.load_imdb_reviews(data_dir=cache, offline=True, files=files, return_labels=True)
    assert y_train == [i % 2 for i in range(30)] and y_test == [i % 2 for i in range(20)]
    assert corpus.class_names == ("negative", "positive")
    label_of = dict(zip(train, y_train))
    assert corpus.labels("train").tolist() == [label_of[r] for r in corpus.train]
    assert corpus.labels("validation").tolist() == y_test


def test_imdb_offline_error_names_file_and_place(tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(DatasetUnavailable) as info:
        corpora.load_corpus("imdb", data_dir=cache, offline=True)
    message = str(info.value)
    assert "imdb.npz" in message and str(cache / "imdb" / "imdb.npz") in message
    assert "https://storage.googleapis.com/tensorflow/tf-keras-datasets/imdb.npz" in message


def test_imdb_corrupt_and_malicious_files(tmp_path):
    server = tmp_path / "server"
    server.mkdir()
    files, _ = make_imdb(server)
    cache = tmp_path / "cache"
    (cache / "imdb").mkdir(parents=True)
    (cache / "imdb" / "imdb.npz").write_bytes(b"not the file")
    with pytest.raises(CorruptDataFile, match="imdb.npz"):
        corpora.load_imdb_reviews(data_dir=cache, offline=True, files=files)
    # an object array whose pickle would call something other than numpy is refused
    evil = tmp_path / "evil.npz"
    np.savez(evil, x_train=np.array([print, 1], dtype=object), x_test=np.array([[1]], dtype=object))
    with pytest.raises(CorruptDataFile, match="refusing"):
        downloads.read_imdb_npz(evil)
    with pytest.raises(CorruptDataFile, match="x_test"):
        partial = tmp_path / "partial.npz"
        np.savez(partial, x_train=np.arange(3))
        downloads.read_imdb_npz(partial)


def test_pydoc_labels_are_documentation_parts():
    corpus = corpora.load_corpus("pydoc")
    assert corpus.has_labels and corpus.class_names == tuple(corpora.PYDOC_PARTS)
    train, validation = corpus.labels("train"), corpus.labels("validation")
    assert len(train) == len(corpus.train) and len(validation) == len(corpus.validation)
    assert (train >= 0).mean() > 0.95  # nearly every topic of the installed Python is mapped
    assert set(np.unique(train[train >= 0])) == set(range(len(corpora.PYDOC_PARTS)))
    topic_of = corpora.pydoc_topics()
    assert list(topic_of) == corpora.pydoc_paragraphs()
    part = {t: i for i, topics in enumerate(corpora.PYDOC_PARTS.values()) for t in topics}
    for paragraph, label in zip(corpus.train[:50], train[:50]):
        assert label == part.get(topic_of[paragraph], -1)
    debugger = corpus.class_names.index("debugger")
    assert all(topic_of[p] == "debugger" for p, y in zip(corpus.train, train) if y == debugger)
    subset = corpora.load_corpus("pydoc", max_train=100, seed=2)
    lookup = dict(zip(corpus.train, train))
    assert [lookup[p] for p in subset.train] == subset.labels("train").tolist()  # labels follow the subset
    topics_everywhere = [t for topics in corpora.PYDOC_PARTS.values() for t in topics]
    assert len(topics_everywhere) == len(set(topics_everywhere))  # each topic in one part only


def test_folder_corpus_has_no_labels(tmp_path, sentences):
    corpus = corpora.load_corpus(str(make_text_folder(tmp_path / "texts", sentences)))
    assert not corpus.has_labels
    with pytest.raises(ValueError, match="no labels"):
        corpus.labels("train")
