"""``star bench latent``: is the latent ordered from structure to texture? Definitions in
docs/METRICS.md.

Per model, on the eval split (``--split``, default test):

* per-channel KL (nats/frame, textbook 0.5 form, mean over clips), the rate in bits/s in total
  and per subspace (structure = [0, K), texture = [K, C)), and a suggested K: the smallest K
  whose channels [0, K) hold at least ``--kl-fraction`` (0.9) of the total KL;
* the mean absolute off-diagonal Pearson correlation between channels (posterior means, all
  frames);
* texture / structure replacement: decode with that subspace replaced by N(0, 1) samples
  (fixed seed) and compare the log-magnitude STFT error below 1 kHz and above 4 kHz with the
  plain reconstruction's;

and with the train split (``--train-split``): linear probes of the corpus labels on structure
/ texture / all / random-K channel summaries (``probes.py``), and a small rectified-flow prior's
validation loss (``flow_prior.py``). A plain folder has no labels (no probes); its prior is
trained on 4/5 of the files and validated on the rest (a hash of the file name decides).
"""
from __future__ import annotations

import hashlib
import sys
import time

from ..corpus_manifest import LABEL_KEYS
from .report import add_data_arguments

#: Bands of the replacement error, Hz: [lo, hi); None = Nyquist.
BANDS = {"low": (0.0, 1000.0), "high": (4000.0, None)}
BAND_NFFT, BAND_HOP = 2048, 512
FLOOR_DB = -80.0
SPARK = " ▁▂▃▄▅▆▇█"


def add_arguments(parser) -> None:
    add_data_arguments(parser)
    parser.add_argument("--train-split", default="train",
                        help="corpus split for the probes' and the prior's training (default: train)")
    parser.add_argument("--max-train-clips", type=int, default=500, metavar="N",
                        help="use at most N train clips (evenly spaced by id; default 500)")
    parser.add_argument("--prior-steps", type=int, default=300, metavar="N",
                        help="training steps of the flow-matching prior (default 300; 0 skips it)")
    parser.add_argument("--prior-frames", type=int, default=32, metavar="F",
                        help="latent frames per prior training crop (default 32)")
    parser.add_argument("--kl-fraction", type=float, default=0.9,
                        help="fraction of the KL the suggested structure channels hold (default 0.9)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")


# ----------------------------------------------------------------------------- pieces

def band_errors(estimate, reference, sample_rate: int) -> dict:
    """Mean |L_e - L_r| (dB) per band, L = 20 log10 max(|STFT| * 2 / sum(w), 10^(-80/20)),
    Hann window 2048, hop 512, over all frames and channels; bands from ``BANDS`` plus "full".
    A band above Nyquist gives nan."""
    import numpy as np
    import torch

    e = torch.from_numpy(np.ascontiguousarray(estimate, dtype=np.float32)).reshape(
        -1, estimate.shape[-1])
    r = torch.from_numpy(np.ascontiguousarray(reference, dtype=np.float32)).reshape(
        -1, reference.shape[-1])
    window = torch.hann_window(BAND_NFFT)
    floor = 10.0 ** (FLOOR_DB / 20.0)

    def level(x):
        mag = torch.stft(x, BAND_NFFT, BAND_HOP, window=window, return_complex=True).abs()
        return 20.0 * torch.log10((mag * 2.0 / window.sum()).clamp(min=floor))

    diff = (level(e) - level(r)).abs()  # (channels, bins, frames)
    freqs = torch.arange(diff.shape[1]) * sample_rate / BAND_NFFT
    out = {}
    for name, (lo, hi) in BANDS.items():
        hi = sample_rate / 2 if hi is None else hi
        mask = (freqs >= lo) & (freqs < hi) if hi < sample_rate / 2 else (freqs >= lo)
        out[name] = float(diff[:, mask].mean()) if mask.any() else float("nan")
    out["full"] = float(diff.mean())
    return out


def suggest_structure_channels(kl, fraction: float = 0.9) -> int:
    """Smallest K with sum(kl[:K]) >= fraction * sum(kl) (channels in index order)."""
    import numpy as np

    kl = np.clip(np.asarray(kl, dtype=np.float64), 0.0, None)
    total = kl.sum()
    if total <= 0:
        return 0
    return int(np.searchsorted(np.cumsum(kl), fraction * total - 1e-12 * total) + 1)


def channel_correlation(flat, structure: int) -> dict:
    """Mean |Pearson r| over off-diagonal channel pairs of ``flat`` (C, N), overall and within
    structure, within texture and across. Constant channels are left out (and counted)."""
    import numpy as np

    x = np.asarray(flat, dtype=np.float64)
    channels = x.shape[0]
    std = x.std(axis=1)
    active = np.flatnonzero(std > 1e-12)
    result = {"mean_abs_offdiag": float("nan"), "structure": float("nan"),
              "texture": float("nan"), "cross": float("nan"),
              "constant_channels": int(channels - active.size), "frames": int(x.shape[1])}
    if active.size < 2:
        return result
    corr = np.abs(np.corrcoef(x[active]))
    is_struct = active < structure
    off = ~np.eye(active.size, dtype=bool)

    def mean_of(mask):
        return float(corr[mask].mean()) if mask.any() else float("nan")

    result["mean_abs_offdiag"] = mean_of(off)
    result["structure"] = mean_of(off & np.outer(is_struct, is_struct))
    result["texture"] = mean_of(off & np.outer(~is_struct, ~is_struct))
    result["cross"] = mean_of(np.outer(is_struct, ~is_struct) | np.outer(~is_struct, is_struct))
    return result


def _clip_seed(seed: int, item_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{item_id}".encode()).digest()[:6], "big")


class _ModelRun:
    """Everything gathered for one model while the clips stream past."""

    def __init__(self, name, model):
        self.name, self.model = str(name), model
        self.kl, self.flat = [], []
        self.eval_means, self.eval_labels, self.eval_seqs = [], [], []
        self.train_means, self.train_labels, self.train_seqs = [], [], []
        self.bands = {"plain": [], "texture_prior": [], "structure_prior": []}

    def encode(self, clip):
        import torch

        from ..convert import to_model_batch

        batch, layout = to_model_batch(clip.audio, clip.rate, self.model.sample_rate,
                                       self.model.config.audio_channels)
        with torch.no_grad():
            latent = self.model.encode(batch)
        return latent, layout

    def add_eval(self, clip, seed: int):
        import torch

        from ..convert import from_model_batch
        from ..star_loss import kl_nats_per_frame

        latent, layout = self.encode(clip)
        mean, logsigma = latent.mean, latent.logsigma
        k = self.model.config.structure_channels
        self.kl.append(kl_nats_per_frame(mean, logsigma).double().numpy())
        self.flat.append(mean.permute(1, 0, 2).reshape(mean.shape[1], -1).double().numpy())
        self.eval_means.append(mean)
        self.eval_labels.append(dict(clip.item.labels))
        self.eval_seqs += [(clip.item.id, mean[r], logsigma[r]) for r in range(mean.shape[0])]
        noise = torch.randn(mean.shape, generator=torch.Generator().manual_seed(
            _clip_seed(seed, clip.item.id)))
        variants = {"plain": mean}
        if k < mean.shape[1]:
            variants["texture_prior"] = torch.cat([mean[:, :k], noise[:, k:]], dim=1)
        if k > 0:
            variants["structure_prior"] = torch.cat([noise[:, :k], mean[:, k:]], dim=1)
        for name, z in variants.items():
            with torch.no_grad():
                audio = from_model_batch(self.model.decode(z, latent.num_samples), layout)
            self.bands[name].append(band_errors(audio, clip.audio, clip.rate))

    def add_train(self, clip):
        latent, _ = self.encode(clip)
        self.train_means.append(latent.mean)
        self.train_labels.append(dict(clip.item.labels))
        self.train_seqs += [(clip.item.id, latent.mean[r], latent.logsigma[r])
                            for r in range(latent.mean.shape[0])]


# ----------------------------------------------------------------------------- the benchmark

def _summarise(run: _ModelRun, kind: str, label_keys, prior_steps, prior_frames, kl_fraction,
               seed, has_train) -> dict:
    import numpy as np

    import torch

    from ..star_loss import kl_to_fitted_gaussian, rate_bits_per_second
    from .report import finite_stats, hash_fold, warn

    cfg, model = run.model.config, run.model
    k, channels, rate = cfg.structure_channels, cfg.latent_channels, model.latent_rate
    kl = np.mean(run.kl, axis=0)
    total = float(kl.sum())
    suggested = suggest_structure_channels(kl, kl_fraction)
    # one Gaussian fitted to every evaluated frame: the rate an entropy coder would pay
    fitted = kl_to_fitted_gaussian(torch.cat([m for _, m, _ in run.eval_seqs], dim=-1)[None],
                                   torch.cat([s for _, _, s in run.eval_seqs], dim=-1)[None])
    fitted = fitted.double().numpy()
    out = {
        "model": {"model": run.name, "name": cfg.name, "family": cfg.family,
                  "backbone": cfg.backbone, "causal": cfg.causal, "sample_rate": cfg.sample_rate,
                  "hop": model.hop, "latent_rate_hz": rate, "latent_channels": channels,
                  "structure_channels": k, "star": cfg.star},
        "n_eval_clips": len(run.kl),
        "kl": {
            "per_channel_nats_per_frame": kl.tolist(),
            "total_nats_per_frame": total,
            "structure_nats_per_frame": float(kl[:k].sum()),
            "texture_nats_per_frame": float(kl[k:].sum()),
            "rate_bits_per_s": rate_bits_per_second(kl, rate),
            "rate_structure_bits_per_s": rate_bits_per_second(kl[:k], rate),
            "rate_texture_bits_per_s": rate_bits_per_second(kl[k:], rate),
            "fitted_per_channel_nats_per_frame": fitted.tolist(),
            "fitted_rate_bits_per_s": rate_bits_per_second(fitted, rate),
            "channels_above_0.1_nats": int((kl > 0.1).sum()),
            "first_8_fraction": float(kl[:8].sum() / total) if total > 0 else float("nan"),
            "structure_fraction": float(kl[:k].sum() / total) if total > 0 else float("nan"),
            "suggested_structure_channels": suggested,
            "suggestion_rule": f"smallest K whose channels [0, K) hold >= {kl_fraction:g} of "
                               f"the total KL",
        },
        "correlation": channel_correlation(np.concatenate(run.flat, axis=1), k),
    }

    bands = {}
    for name, rows in run.bands.items():
        if rows:
            bands[name] = {b: finite_stats([r[b] for r in rows])["mean"]
                           for b in (*BANDS, "full")}
    for name in ("texture_prior", "structure_prior"):
        if name in bands:
            bands[name]["delta"] = {b: bands[name][b] - bands["plain"][b]
                                    for b in (*BANDS, "full")}
    out["replacement"] = {"bands_hz": {n: [lo, hi] for n, (lo, hi) in BANDS.items()},
                          "error_db": bands}

    # probes
    if kind == "folder":
        out["probes"] = {"skipped": "a plain folder has no labels"}
    elif not has_train:
        out["probes"] = {"skipped": "no train split"}
    elif not label_keys:
        out["probes"] = {"skipped": "no label keys (source/family/register/effect) in the manifest"}
    else:
        from .probes import run_probes

        out["probes"] = run_probes(run.train_means, run.train_labels, run.eval_means,
                                   run.eval_labels, channels, k, label_keys, seed=seed)

    # flow prior
    if prior_steps <= 0:
        out["prior"] = {"skipped": "--prior-steps 0"}
    else:
        if kind == "folder":
            train = [(m, s) for i, m, s in run.eval_seqs if hash_fold(i) != 0]
            evals = [(m, s) for i, m, s in run.eval_seqs if hash_fold(i) == 0]
            note = "plain folder: trained on files with hash fold 1-4, validated on fold 0"
        else:
            train = [(m, s) for _, m, s in run.train_seqs]
            evals = [(m, s) for _, m, s in run.eval_seqs]
            note = "trained on the train split, validated on the eval split"
        from .flow_prior import train_flow_prior

        try:
            out["prior"] = train_flow_prior(train, evals, steps=prior_steps, seed=seed,
                                            frames=prior_frames)
            out["prior"]["note"] = note
        except ValueError as exc:
            warn(f"model '{run.name}': flow prior skipped: {exc}")
            out["prior"] = {"skipped": str(exc)}
    return out


def bench_latent(data, models, split="test", train_split="train", max_clips=None,
                 max_train_clips=500, seconds=None, prior_steps=300, prior_frames=32,
                 kl_fraction=0.9, seed=0) -> dict:
    """Run the benchmark; ``models``: names/paths or (name, model) pairs."""
    from ..model_io import load_vae
    from .report import BenchError, check_positive, iter_clips, resolve_data, warn

    check_positive("--seconds", seconds)
    if not 0 < kl_fraction <= 1:
        raise BenchError(f"--kl-fraction must be in (0, 1], got {kl_fraction!r}")
    if prior_frames < 1:
        raise BenchError(f"--prior-frames must be >= 1, got {prior_frames!r}")
    dataset = resolve_data(data, split, max_clips)
    train_set = None
    if dataset.kind == "corpus":
        if train_split == split:
            raise BenchError(f"--train-split and --split are both {split!r}; probes and the "
                             f"prior must be scored on clips they were not trained on")
        try:
            train_set = resolve_data(data, train_split, max_train_clips)
        except BenchError as exc:
            warn(f"{exc}; no probes and no prior")
    runs = [_ModelRun(*(m if isinstance(m, tuple) else (m, load_vae(m)))) for m in models]

    skipped = []
    start = time.perf_counter()
    for clip in iter_clips(dataset.items, seconds, skipped):
        for run in runs:
            run.add_eval(clip, seed)
    if not runs[0].kl:
        raise BenchError(f"no clip of '{dataset.root}' could be evaluated "
                         f"({len(skipped)} skipped; see the warnings above)")
    if train_set is not None:
        for clip in iter_clips(train_set.items, seconds, skipped):
            for run in runs:
                run.add_train(clip)

    label_keys = [key for key in LABEL_KEYS
                  if any(key in item.labels for item in dataset.items)]
    has_train = bool(train_set is not None and runs[0].train_means)
    results = [_summarise(run, dataset.kind, label_keys, prior_steps, prior_frames, kl_fraction,
                          seed, has_train) for run in runs]
    return {
        "benchmark": "latent",
        "data": {**dataset.describe(), "seconds": seconds,
                 "train": train_set.describe() if train_set else None},
        "settings": {"seed": seed, "prior_steps": prior_steps, "prior_frames": prior_frames,
                     "kl_fraction": kl_fraction, "label_keys": label_keys,
                     "band_stft": {"n_fft": BAND_NFFT, "hop": BAND_HOP, "window": "hann",
                                   "floor_db": FLOOR_DB}},
        "models": results,
        "skipped": skipped,
        "elapsed_s": time.perf_counter() - start,
    }


# ----------------------------------------------------------------------------- output

def sparkline(values, split: int) -> str:
    import numpy as np

    v = np.clip(np.asarray(values, dtype=np.float64), 0.0, None)
    top = v.max() if v.size and v.max() > 0 else 1.0
    chars = [SPARK[int(round(x / top * (len(SPARK) - 1)))] for x in v]
    if 0 < split < len(chars):
        chars.insert(split, "|")
    return "".join(chars)


def _profile_lines(kl, k, per_line=8):
    lines = []
    for start in range(0, len(kl), per_line):
        cells = []
        for c in range(start, min(start + per_line, len(kl))):
            if c == k and c != 0:
                cells.append("|")
            cells.append(f"{kl[c]:6.2f}")
        lines.append(f"  c{start}-{min(start + per_line, len(kl)) - 1}".ljust(10)
                     + " ".join(cells))
    return lines


def _probe_table(probes):
    from .report import fmt

    sets = list(probes["feature_sets"])
    headers = ["label", "n train/eval", "majority"] + [
        f"{name} ({2 * len(probes['feature_sets'][name][0])} f)" for name in sets]
    rows = []
    for key, per_set in probes["keys"].items():
        first = next(iter(per_set.values()))
        rows.append([key, f"{first['n_train']}/{first['n_eval']}",
                     fmt(first["majority_accuracy"])]
                    + [fmt(per_set[s]["accuracy"]) if s in per_set else "-" for s in sets])
    return headers, rows


def _replacement_rows(rep):
    from .report import fmt

    names = {"plain": "plain reconstruction", "texture_prior": "texture -> N(0,1)",
             "structure_prior": "structure -> N(0,1)"}
    rows = []
    for key, label in names.items():
        if key not in rep["error_db"]:
            continue
        e = rep["error_db"][key]
        cells = []
        for b in (*BANDS, "full"):
            cell = fmt(e[b])
            if "delta" in e:
                cell += f" ({e['delta'][b]:+.2f})"
            cells.append(cell)
        rows.append([label, *cells])
    return ["condition", "low < 1 kHz", "high > 4 kHz", "full band"], rows


def _model_lines(m, markdown: bool):
    from .report import fmt, markdown_table, text_table

    table = markdown_table if markdown else text_table
    info, kl = m["model"], m["kl"]
    k = info["structure_channels"]
    per = kl["per_channel_nats_per_frame"]
    h = "## " if markdown else ""
    lines = [f"{h}model {info['model']}: {info['latent_channels']} channels at "
             f"{info['latent_rate_hz']:.2f} Hz, structure K={k}, {m['n_eval_clips']} eval clips",
             "" if markdown else None,
             f"KL {kl['total_nats_per_frame']:.2f} nats/frame = {kl['rate_bits_per_s']:.0f} b/s "
             f"(structure {kl['rate_structure_bits_per_s']:.0f} b/s = "
             f"{100 * kl['structure_fraction']:.0f}%, texture {kl['rate_texture_bits_per_s']:.0f} b/s)",
             f"rate against a Gaussian fitted to the latents: {kl['fitted_rate_bits_per_s']:.0f} b/s; "
             f"{kl['channels_above_0.1_nats']} channels above 0.1 nats/frame; channels 0-7 hold "
             f"{100 * kl['first_8_fraction']:.0f}% of the KL",
             "",
             ("```" if markdown else None),
             f"profile   {sparkline(per, k)}   ('|' = K={k})",
             *_profile_lines(per, k),
             ("```" if markdown else None),
             f"suggested K = {kl['suggested_structure_channels']} ({kl['suggestion_rule']})",
             ""]
    c = m["correlation"]
    lines += [f"channel correlation: mean |r| off-diagonal {fmt(c['mean_abs_offdiag'], 3)} "
              f"(within structure {fmt(c['structure'], 3)}, within texture "
              f"{fmt(c['texture'], 3)}, across {fmt(c['cross'], 3)}; "
              f"{c['constant_channels']} constant channel(s) left out)", ""]
    headers, rows = _replacement_rows(m["replacement"])
    lines += ["subspace replaced by prior samples: log-magnitude STFT error, dB "
              "(change vs plain reconstruction)", "", table(headers, rows), ""]
    probes = m["probes"]
    if "skipped" in probes:
        lines += [f"probes: skipped ({probes['skipped']})", ""]
    else:
        headers, rows = _probe_table(probes)
        rand = [n for n in probes["feature_sets"] if n.startswith("random")]
        lines += ["linear probes: eval accuracy (f = features; "
                  + (f"{rand[0]} = mean of {len(probes['feature_sets'][rand[0]])} random "
                     f"channel subsets of the size of the structure" if rand else "") + ")",
                  "", table(headers, rows), ""]
    p = m["prior"]
    if "skipped" in p:
        lines += [f"flow prior: skipped ({p['skipped']})"]
    else:
        s = p["settings"]
        lines += [f"flow prior: val loss {p['val_loss']:.4f} (zero predictor "
                  f"{p['zero_predictor_loss']:.4f}, ratio {p['relative_val_loss']:.3f}) after "
                  f"{s['steps']} steps, crops of {s['frames']} frames, seed {s['seed']}; "
                  f"{s['train_sequences']} train / {s['eval_sequences']} eval sequences "
                  f"({p['note']})"]
    return [line for line in lines if line is not None]


def format_text(result) -> str:
    d = result["data"]
    lines = [f"latent benchmark on {d['root']} ({d['kind']}"
             + (f", split {d['split']}" if d["split"] else "") + f"): "
             f"{d['clips_selected']} of {d['clips_available']} clips"
             + (f"; train split {d['train']['split']}: {d['train']['clips_selected']} clips"
                if d.get("train") else ""), ""]
    for m in result["models"]:
        lines += _model_lines(m, markdown=False) + [""]
    if result["skipped"]:
        lines.append(f"{len(result['skipped'])} file(s) skipped (unreadable or too short)")
    return "\n".join(lines).rstrip() + "\n"


def format_markdown(result) -> str:
    d = result["data"]
    lines = ["# Latent benchmark", "",
             f"Data: `{d['root']}` ({d['kind']}" + (f", split `{d['split']}`" if d["split"] else "")
             + f"), {d['clips_selected']} of {d['clips_available']} clips"
             + (f"; train split `{d['train']['split']}`: {d['train']['clips_selected']} clips"
                if d.get("train") else "") + ". Definitions in docs/METRICS.md.", ""]
    for m in result["models"]:
        lines += _model_lines(m, markdown=True) + [""]
    if result["skipped"]:
        lines += ["Skipped files:", ""] + [f"- `{s['path']}`: {s['reason']}"
                                           for s in result["skipped"]]
    return "\n".join(lines).rstrip() + "\n"


def run_bench_latent(args) -> dict:
    from .report import guard_report_files, model_names, torch_threads, write_json, write_text

    guard_report_files(args)  # the output rule, before any measuring
    with torch_threads(args.threads):
        result = bench_latent(args.data, model_names(args), split=args.split,
                              train_split=args.train_split, max_clips=args.max_clips,
                              max_train_clips=args.max_train_clips, seconds=args.seconds,
                              prior_steps=args.prior_steps, prior_frames=args.prior_frames,
                              kl_fraction=args.kl_fraction, seed=args.seed)
    sys.stdout.write(format_text(result))
    if args.json:
        print(f"results written to {write_json(args.json, result)}")
    if args.markdown:
        print(f"markdown written to {write_text(args.markdown, format_markdown(result))}")
    return result
