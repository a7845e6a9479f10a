"""The corpus registry and ``load_corpus``; each reader module registers itself here (the
package's ``__init__`` imports them all, so every built-in name is known)."""

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
