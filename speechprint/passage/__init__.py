"""The paragraph every speaker of the archive reads: its words and their pronunciations
(``lexicon``) and the forced alignment of a recording to them (``align``). Features pool by its
words (``whisper_words``) and findings occlude them, so both read it from here."""
