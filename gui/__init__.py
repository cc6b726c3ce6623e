"""PyQt6 studio (installed as ``star_plugin.gui``)."""
