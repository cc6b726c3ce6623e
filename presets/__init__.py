"""Bundled default models and morph presets (installed as ``star_plugin.presets``)."""
