"""SpeechPrint: an experiment-tracked research harness for accent identification."""

__version__ = "0.1.0"
