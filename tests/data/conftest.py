"""Fixtures shared by the tests of course_lib.data's text modules (corpus, tokenization)."""

import pytest

SENTENCES = ("The cat sat on the mat and looked at the bird outside the window.",
             "A dog ran across the park while the children played with a red ball.",
             "Every morning the baker opens the shop and sells fresh bread to the town.",
             "The river flows past the old mill where the farmers bring their grain.",
             "In winter the lake freezes and the people skate on the thick ice.")


@pytest.fixture(scope="session")
def sentences():
    """Five English sentences of 13-15 words, a list of str (a new list for every test module that asks)."""
    return list(SENTENCES)
