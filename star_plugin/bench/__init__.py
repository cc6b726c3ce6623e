"""Benchmarks behind ``star bench``."""
