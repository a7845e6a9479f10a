"""Data preparation, a step of its own: archive -> labelled speaker-disjoint split -> features.

A study prepares each extractor once and hands the result to every trial; ``run()`` only ever
receives prepared data. Features are cached on disk (``cache_dir``), so preparing again is cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from speechprint.core.errors import DataError, SpeechPrintError
from speechprint.data.corpora import load_corpus
from speechprint.data.dataset import Dataset, make_dataset
from speechprint.features import FeatureSet, extract_features, make_extractor

if TYPE_CHECKING:  # a type only: speechprint.train imports nothing from here at run time
    from speechprint.train.config import DataSpec, RunConfig


class PreparedData(NamedTuple):
    """What a run trains on; unpacks as ``dataset, features = data``."""

    dataset: Dataset
    features: FeatureSet


def check_data(data: DataSpec, *, source: str) -> Dataset:
    """The labelled split ``data`` describes, built once before any run or study exists, so a
    missing, empty or unparseable table, an unknown corpus or region table, or too few classes
    is one error naming ``source`` and the key (every retry would otherwise add a FAILED run)."""
    try:
        archive = load_corpus(data.archive, data.corpus, regions=data.regions)
    except SpeechPrintError as error:
        raise DataError(f"{source}: data.archive: {error}") from error
    try:
        return make_dataset(
            archive,
            data.target,
            min_count=data.min_count,
            seed=data.seed,
            val_fraction=data.val_fraction,
            test_fraction=data.test_fraction,
            max_clips_per_speaker=data.max_clips_per_speaker,
        )
    except SpeechPrintError as error:
        raise DataError(f"{source}: data: {error}") from error


def prepare_data(config: RunConfig, *, progress: bool = True) -> PreparedData:
    """Corpus -> labelled speaker-disjoint split -> cached features for every recording."""
    archive = load_corpus(config.archive, config.corpus, regions=config.regions)
    dataset = make_dataset(
        archive,
        config.target,
        min_count=config.min_count,
        seed=config.seed,
        val_fraction=config.val_fraction,
        test_fraction=config.test_fraction,
        max_clips_per_speaker=config.max_clips_per_speaker,
    )
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
