"""Texts and their pronunciations (lexicon, G2P): no audio, below the features."""
