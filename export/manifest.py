"""``manifest.json``: what an export directory holds, for hosts and for the runtime backend.

It lists every graph with its input and output names, and for the streaming graphs every
state: its name (``state_in.<name>`` / ``state_out.<name>`` in the graph), its shape for
batch 1, which axes are dynamic, how its first axis grows with the batch, and its initial
value (all zeros: the state of silence). The timing facts (sample rate, hop, latency) repeat
the graphs' ``metadata_props``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

from star_plugin.errors import ModelFileError
from star_plugin.model_io import read_json

MANIFEST_FILE = "manifest.json"
FORMAT = "star-onnx"
# Bumped when graph inputs/outputs or state conventions change incompatibly.
FORMAT_VERSION = 1
GRAPH_NAMES = ("encoder", "decoder", "encoder_stream", "decoder_stream")


def read_manifest(directory: Path) -> Dict[str, Any]:
    path = Path(directory) / MANIFEST_FILE
    if not path.is_file():
        raise ModelFileError(
            f"'{directory}' has no {MANIFEST_FILE}: it is not an ONNX export directory "
            "(create one with `star export MODEL -o DIR`)")
    manifest = read_json(path)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelFileError(f"'{path}' is not a STAR ONNX manifest (format != '{FORMAT}')")
    check_format_version(manifest.get("format_version"), manifest.get("star_plugin_version"),
                         str(path))
    for key in ("model", "graphs"):
        if not isinstance(manifest.get(key), dict):
            raise ModelFileError(f"'{path}' lacks its '{key}' section; the file is corrupt")
    return manifest


def check_format_version(version, producer, where: str) -> None:
    """Refuse graphs written under another format version, naming both versions."""
    try:
        version = int(version)
    except (TypeError, ValueError):
        raise ModelFileError(f"'{where}' has no valid format version ({version!r})") from None
    if version != FORMAT_VERSION:
        raise ModelFileError(
            f"'{where}' was exported by star_plugin {producer or '?'} in ONNX format version "
            f"{version}; this star_plugin reads version {FORMAT_VERSION}. Re-export the model "
            "with this version (`star export MODEL -o DIR`)")
