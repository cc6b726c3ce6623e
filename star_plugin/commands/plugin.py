"""``star plugin build``: the native engine, ``star-engine-cli`` and STAR.vst3 (docs/NATIVE.md).

The options and the work live in ``star_plugin.native_build`` (CMake, the ONNX Runtime headers
and library, the model export bundled in the plugin). That module imports only the standard
library at module level; the export and torch are imported when the command runs.
"""
from __future__ import annotations


def add_arguments(p) -> None:
    from ..native_build import add_arguments as native_arguments

    native_arguments(p)


def run(args):
    from ..native_build import run as native_run

    return native_run(args)
