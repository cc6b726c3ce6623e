"""Capacity check of a v3 model (issue 22): can it draw one clip's fine structure at all?

Trains a copy of the model on a single test clip with stage 1's loss (``trainer.analysis_loss``
with a training config's weights; posterior mean, no KL) for ``--steps`` steps, and scores the
clip before and after as ``star bench recon`` does. ``--only decoder`` freezes the encoder:
if the decoder alone gets there, the latent already carries what is missing and the limit is
how far the decoder has learned to read it, not the latent or the head.

    python benchmarks/overfit_v3.py data/corpus-v2 gm-000605 --steps 300 --only decoder
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from oracle_harmonic import pitched_test_items  # noqa: E402

from star_plugin.analysis import analyse, head_errors  # noqa: E402
from star_plugin.bench.recon import ReferenceScorer  # noqa: E402
from star_plugin.bench.report import iter_clips  # noqa: E402
from star_plugin.convert import from_model_batch, to_model_batch  # noqa: E402
from star_plugin.model_io import load_vae  # noqa: E402
from training.train_config import TrainConfig  # noqa: E402
from training.trainer import analysis_loss  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("data", type=Path)
    p.add_argument("clip", help="a pitched test clip id, e.g. gm-000605")
    p.add_argument("--model", default="training/checkpoints/default-v3")
    p.add_argument("--config", default="training/configs/v3.json", help="loss weights from here")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--only", choices=("all", "decoder"), default="all")
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--out", type=Path, default=None, help="JSON with the before/after rows")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    weights = TrainConfig.from_file(args.config).loss
    model = load_vae(args.model)
    cfg, head = model.config, model.decoder.layers[-1].inner
    items = [i for i in pitched_test_items(args.data, 10 ** 6)[0] if i.id == args.clip]
    if not items:
        raise SystemExit(f"clip {args.clip!r}: not a pitched clip of the test split of {args.data}")
    clip = next(iter_clips(items, args.seconds))
    x, layout = to_model_batch(clip.audio, clip.rate, cfg.sample_rate, 1)
    score = ReferenceScorer(clip.audio, clip.rate)
    target = analyse(x, cfg.sample_rate, cfg.n_fft, cfg.stft_hop, cfg.harmonics, head.drawable_hz)
    trained = [q for name, q in model.named_parameters()
               if args.only == "all" or name.startswith("decoder.")]
    opt = torch.optim.AdamW(trained, lr=args.lr, weight_decay=0.0)

    def evaluate(step: int) -> dict:
        model.eval()
        with torch.no_grad():
            _, _, features = model.forward_with_head(x, sample=False)
            errors = {k: float(v) for k, v in head_errors(head, features, target).items()}
            audio = model.reconstruct(x)[..., :x.shape[-1]]
        m = score(from_model_batch(audio, layout))
        row = {"step": step, **errors, **{k: m[k] for k in ("fsc", "msd", "level_db")}}
        print(f"step {step}: fine {row['fine_db']:.2f} dB, envelope {row['envelope_db']:.2f} dB, "
              f"partials {row['partial_db']:.2f} dB | FSC {row['fsc']:.3f}, MSD {row['msd']:.3f}, "
              f"level {row['level_db']:+.2f} dB", flush=True)
        return row

    rows, started = [evaluate(0)], time.perf_counter()
    for step in range(1, args.steps + 1):
        model.train()
        _, _, features = model.forward_with_head(x, sample=False)
        loss = analysis_loss(head_errors(head, features, target, partials_on_analysis_f0=True), weights)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        opt.step()
        if step % 100 == 0 or step == args.steps:
            rows.append(evaluate(step))
    result = {"benchmark": "overfit_v3", "model": args.model, "clip": args.clip, "only": args.only,
              "config": args.config, "lr": args.lr, "rows": rows,
              "elapsed_s": round(time.perf_counter() - started, 1)}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=1))
        tmp.replace(args.out)
    return result


if __name__ == "__main__":
    main()
