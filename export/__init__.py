"""ONNX export and the ONNX Runtime backend (installed as ``star_plugin.export``)."""
