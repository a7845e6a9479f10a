"""Findings a linguist can read (see run.py)."""
