"""Benchmarks: python -m bench.<name> [--rows N] [--db sqlite|postgres]."""
