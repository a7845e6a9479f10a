"""A small demo corpus in the Speech Accent Archive layout, made offline with eSpeak NG.

`synthesize_corpus(out_dir)` writes ``speakers_all.csv`` (the real archive's columns) and
``recordings/<filename>.mp3`` for synthetic speakers reading the archive's paragraph. Each class is
an eSpeak NG voice group mapped to a real country (and so to a region through the region table).

- `espeak`: libespeak-ng through ctypes (`synthesize`), one private library copy per utterance;
- `voices`: the accent classes (`ACCENT_CLASSES`, `AccentClass`) and voice variants;
- `corpus`: the reading passage (`paragraph`), per-speaker settings, rendering and the files
  (`synthesize_corpus`).
"""

from __future__ import annotations

from speechprint.data.synth.corpus import CSV_COLUMNS, SAMPLE_RATE, paragraph, synthesize_corpus
from speechprint.data.synth.espeak import synthesize
from speechprint.data.synth.voices import ACCENT_CLASSES, AccentClass

__all__ = [
    "ACCENT_CLASSES",
    "CSV_COLUMNS",
    "SAMPLE_RATE",
    "AccentClass",
    "paragraph",
    "synthesize",
    "synthesize_corpus",
]
