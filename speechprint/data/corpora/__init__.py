"""Corpus readers in one registry: each turns a corpus folder into an ``Archive``.

An ``Archive`` has one row per clip (``speakerid``, ``path``, ``native_language``, ``country``,
``sex``, ``age``, ``region``, ``accent``, the corpus's own label, and ``text``, what the clip
says where the corpus has a transcript: the archive's paragraph, Common Voice's sentence, the
transcript files of VCTK and L2-ARCTIC, speechocean762's ``text`` table) whatever the corpus, so
the rest of SpeechPrint (datasets, features, studies) never knows which corpus it reads. ``saa`` (the
Speech Accent Archive in its Kaggle layout) is the default; third-party readers register through
the ``speechprint.corpora`` entry point group as ``reader(path, table) -> Archive``.
"""

from __future__ import annotations

# Importing a reader registers it.
from speechprint.data.corpora import commonvoice, l2arctic, speechocean762, vctk  # noqa: F401
from speechprint.data.corpora.registry import CORPORA, DEFAULT_CORPUS, Reader, load_corpus

__all__ = ["CORPORA", "DEFAULT_CORPUS", "Reader", "load_corpus"]
