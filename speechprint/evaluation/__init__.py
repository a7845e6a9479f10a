"""Scoring: class-balanced metrics, clip and speaker units, paired evidence and intervals."""
