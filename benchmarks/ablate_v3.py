"""Which of a trained v3 model's predictions limits its sound? (issue 22)

The calibration (benchmarks/calibrate_v3.py) added errors to the input's own analysis. This
goes the other way: it takes a trained peak-locked model's magnitude and swaps one part of it
for the input's, then renders every row with the head's own phase rule (``locked``, as
``calibrate_v3.render_magnitude``) and scores it as ``star bench recon`` does:

* ``model``: the model's magnitude (equal to ``StarVAE.reconstruct``; checked per clip);
* ``comb on YIN f0``: the comb drawn on the centred YIN f0 where it is voiced (the latent pitch
  code is causal, held per latent frame, and 0 where the causal tracker hears no pitch);
* ``model fine structure x2``: the model's fine structure twice as deep (is it right but
  too weak?);
* ``model envelope + input fine``: the input's fine structure (log magnitude minus its power
  envelope, ``analysis.power_envelope``) on the model's envelope;
* ``input envelope + model fine``: the reverse;
* ``model x input loudness``: each frame scaled to the input's frame power;
* ``input magnitude``: the calibration's reference row.

The row whose swap recovers the most FSC (or level) names the prediction to work on.

    python benchmarks/ablate_v3.py data/corpus-v2 --model training/checkpoints/default-v3 \
        --clips 16 --out benchmarks/ablate_v3.json
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from calibrate_v3 import render_magnitude  # noqa: E402
from oracle_harmonic import pitched_test_items  # noqa: E402
from v3_bench import load_peak_locked, print_summary, v3_arguments, write_json  # noqa: E402

from star_plugin.analysis import analyse, frame_loudness_db, power_envelope  # noqa: E402
from star_plugin.bench.recon import ReferenceScorer, clip_subsets  # noqa: E402
from star_plugin.bench.report import finite_stats, iter_clips  # noqa: E402
from star_plugin.convert import from_model_batch, to_model_batch  # noqa: E402
from star_plugin.pitch import F0_CODE_REF_HZ  # noqa: E402

ROWS = ("model", "comb on YIN f0", "model fine structure x2", "model envelope + input fine",
        "input envelope + model fine", "model x input loudness", "input magnitude")
SCORE_KEYS = ("fsc", "msd", "level_db", "buzz_ratio")


@torch.no_grad()
def head_pass(model, x: torch.Tensor):
    """(1, 1, n) audio -> (the head's input, the input's analysis), both over the same t frames."""
    cfg, head = model.config, model.decoder.layers[-1].inner
    _, _, features = model.forward_with_head(x, sample=False)
    target = analyse(x, cfg.sample_rate, cfg.n_fft, cfg.stft_hop, cfg.harmonics, head.drawable_hz)
    t = min(features.shape[-1], target.magnitude.shape[-1])
    return features[..., :t], target


def pitch_code_errors(head, features: torch.Tensor, target) -> dict:
    """The comb's f0 against the centred YIN f0 on the frames YIN calls voiced: |cents| of the
    latent pitch code (held per latent frame) and of the head's f0 (code + correction), and the
    share of those frames where the causal tracker said unvoiced (code exactly 0)."""
    t = features.shape[-1]
    voiced = target.voiced[0, 0, :t]
    yin_octaves = torch.log2(target.f0[0, 0, :t][voiced])
    code = features[0, -1][voiced]
    return {"code_cents": (1200 * (code + math.log2(F0_CODE_REF_HZ) - yin_octaves).abs()).tolist(),
            "head_cents": (1200 * (torch.log2(head.f0(features)[0, 0][voiced])
                                   - yin_octaves).abs()).tolist(),
            "code_unvoiced": (code == 0).tolist()}


def magnitudes(head, features: torch.Tensor, target) -> dict:
    """The head's input and the analysis of one clip -> {row: (1, bins, t) magnitude}."""
    t = features.shape[-1]
    mine = target.magnitude[..., :t]
    theirs = head.magnitude(features)[0]
    yin_f0 = torch.where(target.voiced[..., :t], target.f0[..., :t], head.f0(features))
    log_mine, log_theirs = torch.log(mine + 1e-9), torch.log(theirs + 1e-9)
    env_mine, env_theirs = power_envelope(mine), power_envelope(theirs)
    gain = 10.0 ** ((frame_loudness_db(mine) - frame_loudness_db(theirs)) / 20.0)
    return {"model": theirs,
            "comb on YIN f0": head.magnitude(features, f0=yin_f0)[0],
            "model fine structure x2": torch.exp(env_theirs + 2.0 * (log_theirs - env_theirs)),
            "model envelope + input fine": torch.exp(log_mine - env_mine + env_theirs),
            "input envelope + model fine": torch.exp(log_theirs - env_theirs + env_mine),
            "model x input loudness": theirs * gain,
            "input magnitude": mine}


def main(argv=None):
    args = v3_arguments(__doc__.split("\n")[0], "benchmarks/ablate_v3.json").parse_args(argv)
    torch.set_num_threads(1)
    model, cfg, head = load_peak_locked(args.model)
    items, n_pitched = pitched_test_items(args.data, args.clips)
    clips, started, pitch = [], time.perf_counter(), {"code_cents": [], "head_cents": [],
                                                      "code_unvoiced": []}
    for clip in iter_clips(items, args.seconds):
        x, layout = to_model_batch(clip.audio, clip.rate, cfg.sample_rate, 1)
        n = x.shape[-1]
        # whole latent frames plus one STFT window, so the last samples are analysed
        padded = torch.nn.functional.pad(x, (0, cfg.n_fft - n % cfg.hop + cfg.hop))
        score = ReferenceScorer(clip.audio, clip.rate)
        rates = list(cfg.hop_rates)   # as star bench recon
        row = {"id": clip.item.id, "subsets": clip_subsets(clip.item.labels, True)}
        with torch.no_grad():
            features, target = head_pass(model, padded)
            for key, values in pitch_code_errors(head, features, target).items():
                pitch[key] += values
            rows = magnitudes(head, features, target)
        for name, magnitude in rows.items():
            audio = render_magnitude(head, magnitude.float(), "locked")[..., head.delay:head.delay + n]
            m = score(from_model_batch(audio, layout), rates)
            row[name] = {k: m[k] for k in SCORE_KEYS}
        reference = model.reconstruct(x)[..., :n]
        row["model"]["reconstruct_fsc"] = score(from_model_batch(reference, layout))["fsc"]
        clips.append(row)
        print(clip.item.id, " ".join(f"{row[r]['fsc']:.2f}/{row[r]['level_db']:+.1f}" for r in ROWS),
              file=sys.stderr, flush=True)
    summary = {}
    for name in ROWS:
        summary[name] = {}
        for subset in ("pitched", "real"):
            members = [c[name] for c in clips if subset in c["subsets"]]
            summary[name][subset] = {"n": len(members), **{
                k: finite_stats([m[k] for m in members])["mean"] for k in SCORE_KEYS}}
    code, own = np.array(pitch["code_cents"]), np.array(pitch["head_cents"])
    pitch_summary = {"voiced_frames": int(code.size),
                     "code_median_cents": float(np.median(code)), "code_mean_cents": float(code.mean()),
                     "head_median_cents": float(np.median(own)), "head_mean_cents": float(own.mean()),
                     "code_within_50_cents": float((code < 50).mean()),
                     "code_unvoiced": float(np.mean(pitch["code_unvoiced"])),
                     "code_octave_or_more_off": float(((code > 600) & ~np.array(pitch["code_unvoiced"])).mean())}
    result = {"benchmark": "ablate_v3", "model": args.model, "data": str(args.data),
              "clips": len(clips), "pitched_test_clips": n_pitched, "seconds": args.seconds,
              "summary": summary, "pitch_code": pitch_summary, "per_clip": clips,
              "elapsed_s": round(time.perf_counter() - started, 1)}
    write_json(args.out, result)
    print_summary({name: summary[name]["pitched"] for name in ROWS}, SCORE_KEYS,
                  f"pitched, {len(clips)} clips")
    print("pitch code on YIN-voiced frames: " + ", ".join(f"{k} {v:.3g}" for k, v in pitch_summary.items()))
    return result


if __name__ == "__main__":
    main()
