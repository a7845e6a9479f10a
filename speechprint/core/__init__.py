"""Plumbing every layer stands on: errors, strict config, registries, stopping, worker processes and progress."""
