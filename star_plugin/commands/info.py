"""``star info``: describe a model (architecture, rates, latent split, latency, size)."""
from __future__ import annotations

import json

from . import args as a
from .common import load_model

HOST_RATES = (22050, 44100, 48000, 96000)


def add_arguments(p) -> None:
    a.add_model_positional(p)
    p.add_argument("--json", action="store_true", help="print JSON")


def model_facts(model, name) -> dict:
    cfg = model.config
    latency_ms = round(1000 * model.latency_samples / cfg.sample_rate, 2) if cfg.causal else None
    return {
        "model": str(name), "name": cfg.name, "family": cfg.family, "backbone": cfg.backbone,
        "causal": cfg.causal, "sample_rate": cfg.sample_rate, "audio_channels": cfg.audio_channels,
        "hop": model.hop, "latent_rate_hz": round(model.latent_rate, 3),
        "latent_channels": cfg.latent_channels, "structure_channels": cfg.structure_channels,
        "texture_channels": cfg.latent_channels - cfg.structure_channels,
        "latency_samples": model.latency_samples if cfg.causal else None,
        "latency_ms": latency_ms,
        "parameters": model.num_parameters(),
        "latency_ms_at_host_rate": host_latencies(model) if cfg.causal else None,
    }


def host_latencies(model) -> dict:
    """The engine's latency at common host rates, in ms: with resampling it is more than
    the model's own (soxr's filters), so a host at 48 kHz should not read the 44.1 figure."""
    from ..engine import StreamingEngine

    return {str(rate): round(1000 * StreamingEngine(model, rate, 1, backend="torch")
                             .latency_samples / rate, 1) for rate in HOST_RATES}


def run(args):
    facts = model_facts(load_model(args.model), args.model)
    if args.json:
        print(json.dumps(facts, indent=2))
        return
    print(f"model            {facts['model']} ({facts['name']})")
    print(f"architecture     {facts['family']} + {facts['backbone']}, "
          f"{'causal (streams)' if facts['causal'] else 'bidirectional (offline only)'}")
    print(f"audio            {facts['sample_rate']} Hz, {facts['audio_channels']} channel(s)")
    print(f"hop              {facts['hop']} samples -> latent rate {facts['latent_rate_hz']} Hz")
    print(f"latent           {facts['latent_channels']} channels: structure [0, "
          f"{facts['structure_channels']}), texture [{facts['structure_channels']}, "
          f"{facts['latent_channels']})")
    if facts["causal"]:
        print(f"latency          {facts['latency_samples']} samples ({facts['latency_ms']} ms) "
              "at the model's rate")
        at = ", ".join(f"{int(r) / 1000:g} kHz {ms} ms"
                       for r, ms in facts["latency_ms_at_host_rate"].items())
        print(f"engine latency   {at} (with resampling)")
    else:
        print("latency          n/a (does not stream)")
    print(f"parameters       {facts['parameters']:,}")
