"""``star bench speed``: scan backends, model real-time factors, torch vs ONNX Runtime."""
from __future__ import annotations

from .args import int_list


def add_arguments(b) -> None:
    b.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    b.add_argument("--length", type=int, default=1024, help="scan length (steps)")
    b.add_argument("--repeats", type=int, default=5, help="timed repetitions per case")
    b.add_argument("--seconds", type=float, default=10.0, help="audio length for model timing")
    b.add_argument("--skip-models", action="store_true", help="skip the model timing")
    b.add_argument("--skip-onnx", action="store_true",
                   help="skip the ONNX section (scan bodies, torch vs ONNX Runtime streaming)")
    b.add_argument("--model", default="default", help="model for the ONNX streaming section")
    b.add_argument("--blocks", default="64,256,1024,4096", help="streaming block sizes")
    b.add_argument("--stream-seconds", type=float, default=10.0,
                   help="audio streamed per block size")
    b.add_argument("--scan-lengths", default="1,16,64,256,1024,4096",
                   help="sequence lengths for the SelectiveScan body comparison")
    b.add_argument("--json", help="also write results to this JSON file")


def run(args):
    from ..backend import onnx_available
    from ..bench.model_speed import bench_models, format_model_results
    from ..bench.scan_speed import bench_scan, format_scan_results

    from .common import guard_outputs

    guard_outputs(files=[("--json", args.json)])
    threads = int_list(args.threads, "--threads")
    results = {"scan": [], "models": None, "onnx": None}
    for n in threads:
        result = bench_scan(threads=n, length=args.length, repeats=args.repeats)
        results["scan"].append(result)
        print(f"selective scan, forward+backward, {n} thread(s):")
        print(format_scan_results(result))
        print()
    if not args.skip_models:
        results["models"] = bench_models(threads=threads, seconds=args.seconds)
        print(format_model_results(results["models"]))
        print()
    if not args.skip_onnx and not onnx_available():
        print("ONNX section skipped: it needs onnx and onnxruntime "
              "(pip install 'star-plugin[onnx]')")
    elif not args.skip_onnx:
        from ..bench.onnx_speed import format_onnx_speed, run_onnx_speed

        results["onnx"] = run_onnx_speed(args.model, int_list(args.blocks, "--blocks"),
                                         args.stream_seconds,
                                         int_list(args.scan_lengths, "--scan-lengths"))
        print(format_onnx_speed(results["onnx"]))
    if args.json:
        from .common import write_json

        write_json(args.json, results)
        print(f"\nresults written to {args.json}")
