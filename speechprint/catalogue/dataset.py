"""The ``data:`` section of a study or experiment file checked against the corpus it names.

Light (the corpus readers and the split need pandas, not torch, MLflow or scikit-learn), so the
CLI answers a missing archive, an empty table or too few classes before importing the stack.
"""

from __future__ import annotations

from speechprint.catalogue.config import DataSpec
from speechprint.core.errors import DataError, SpeechPrintError
from speechprint.data.corpora import load_corpus
from speechprint.data.dataset import Dataset, dataset_for


def check_data(data: DataSpec, *, source: str) -> Dataset:
    """The labelled split ``data`` describes, built once before any run or study exists, so a
    missing, empty or unparseable table, an unknown corpus or region table, or too few classes
    is one error naming ``source`` and the key (every retry would otherwise add a FAILED run)."""
    try:
        archive = load_corpus(data.archive, data.corpus, regions=data.regions)
    except SpeechPrintError as error:
        raise DataError(f"{source}: data.archive: {error}") from error
    try:
        return dataset_for(archive, data)
    except SpeechPrintError as error:
        raise DataError(f"{source}: data: {error}") from error
