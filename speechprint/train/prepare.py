"""Data preparation, a step of its own: archive -> labelled speaker-disjoint split -> features.

A study prepares each extractor once and hands the result to every trial; ``run()`` only ever
receives prepared data. Features are cached on disk (``cache_dir``), so preparing again is cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from speechprint.data.corpora import load_corpus
from speechprint.data.dataset import Dataset, dataset_for
from speechprint.features import FeatureSet, extract_features, make_extractor

if TYPE_CHECKING:  # a type only: speechprint.train imports nothing from here at run time
    from speechprint.train.config import RunConfig


class PreparedData(NamedTuple):
    """What a run trains on; unpacks as ``dataset, features = data``."""

    dataset: Dataset
    features: FeatureSet


def prepare_data(config: RunConfig, *, progress: bool = True) -> PreparedData:
    """Corpus -> labelled speaker-disjoint split -> cached features for every recording."""
    archive = load_corpus(config.archive, config.corpus, regions=config.regions)
    dataset = dataset_for(archive, config)
    extractor = make_extractor(config.extractor, config.extractor_params)
    features = extract_features(
        list(dataset.manifest["path"]),
        extractor,
        jobs=config.jobs,
        cache_dir=config.cache_dir,
        progress=progress,
        lazy=config.lazy_features,
        texts=archive.texts(),  # the corpus's transcripts, for extractors that read them
    )
    return PreparedData(dataset, features)
