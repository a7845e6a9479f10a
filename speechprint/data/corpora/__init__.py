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

from collections.abc import Callable
from pathlib import Path

from speechprint.core.registry import Registry
from speechprint.data.archive import Archive, load_archive
from speechprint.data.regions import RegionTable, region_table

Reader = Callable[[Path, RegionTable], Archive]
CORPORA: Registry[Reader] = Registry("corpus", entry_points="speechprint.corpora")
DEFAULT_CORPUS = "saa"


@CORPORA.register("saa", description="Speech Accent Archive, Kaggle layout (speakers_all.csv)")
def _read_saa(path: Path, table: RegionTable) -> Archive:
    return load_archive(path, regions=table)


def load_corpus(
    path: str | Path, corpus: str = DEFAULT_CORPUS, *, regions: str | Path | RegionTable = "seed"
) -> Archive:
    """Read ``path`` with the reader registered as ``corpus`` (``saa`` unless told otherwise)."""
    reader = CORPORA.get(corpus).obj  # an unknown name fails first, listing the valid ones
    table = region_table(regions)
    return reader(Path(path).expanduser(), table)


# The built-in readers register on import.
from speechprint.data.corpora import (  # noqa: E402, F401
    commonvoice,
    l2arctic,
    speechocean762,
    vctk,
)
