"""Corpus building and trainers (installed as ``star_plugin.training``)."""
