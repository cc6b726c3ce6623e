"""``star export``: a model -> ONNX graphs + ``manifest.json`` (``star_plugin.export``)."""
from __future__ import annotations

from pathlib import Path

from . import args as a
from .common import guard_outputs, load_model, model_files, progress


def add_arguments(p) -> None:
    a.add_model_positional(p)
    p.add_argument("-o", "--output", required=True, help="directory to write")
    p.add_argument("--scan-body", default="auto", choices=["auto", "scan", "chunked"],
                   help="SelectiveScan function body (auto: the faster one, measured here)")
    p.add_argument("--offline-only", action="store_true", help="skip the streaming graphs")


def run(args):
    from ..export.exporter import export_model

    out = Path(args.output)
    guard = guard_outputs(directories=[("-o/--output", out)], inputs=model_files(args.model))
    model = load_model(args.model)
    graphs = (4 if model.config.causal and not args.offline_only else 2) + 1  # + morph
    with guard.together(), progress(graphs, "export", "graph") as bar:
        manifest = export_model(model, args.output, scan_body=args.scan_body,
                                stream=not args.offline_only,
                                progress=lambda kind: (bar.set_postfix_str(kind), bar.update()))
    scan = manifest["scan_op"]
    print(f"exported '{args.model}' to {args.output}/ (ONNX opset {manifest['opset']}, "
          f"{scan['domain']}::{scan['name']} bodies: offline '{scan['offline_body']}', "
          f"streaming '{scan['stream_body']}')")
    if scan["measured_ms"]:
        print(f"  scan bodies measured here (ms at 1 / 256 steps): {scan['measured_ms']}")
    for kind, graph in manifest["graphs"].items():
        states = graph.get("states")
        extra = f", {len(states)} states" if states else ""
        print(f"  {graph['file']:<22} {graph['bytes'] / 1e6:6.1f} MB{extra}")
    if not model.config.causal:
        print("  (bidirectional model: offline graphs only, it cannot stream)")
