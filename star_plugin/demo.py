"""``star demo``: reconstruct the bundled examples, swap structure and texture between them,
generate two sounds from text with the bundled STAR-Gen generator and use a generated latent as
a texture.

Writes WAVs and one PNG (spectrograms + latent heatmaps with the structure/texture boundary)
to the output directory and prints the metrics. Runs offline on the CPU in well under a minute.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from .atomic import atomic_path
from .audio import read_audio, write_audio
from .convert import from_model_batch, to_model_batch
from .errors import StarError
from .metrics import mel_distance, si_sdr, spectrogram_db, stft_distance
from .bundled import presets_dir
from .model_io import load_vae

SWAP_PAIRS = [("melody", "texture"), ("speech", "drums")]
# Prompts in the corpus's caption style, none of them a training caption.
GEN_PROMPTS = ["a soft flute playing a slow melody in the middle register",
               "a hip hop drum pattern at 90 BPM played loudly on the HardElectro1 kit"]
GEN_TEXTURE_PROMPT = "a band of pink noise around 2 kHz, slowly fading in"


def _examples() -> dict:
    folder = presets_dir() / "examples"
    files = sorted(folder.glob("*.flac")) + sorted(folder.glob("*.wav"))
    if not files:
        raise StarError(f"no example clips found in '{folder}'")
    return {p.stem: p for p in files}


def _plot(rows, model, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = model.config.structure_channels
    fig, axes = plt.subplots(len(rows), 2, figsize=(12, 2.2 * len(rows)), squeeze=False,
                             gridspec_kw={"width_ratios": [2, 1]})
    for (title, audio, latent), (ax_s, ax_l) in zip(rows, axes):
        ax_s.imshow(spectrogram_db(audio), origin="lower", aspect="auto", cmap="magma",
                    vmin=-80, vmax=20, extent=[0, audio.shape[-1] / model.sample_rate, 0,
                                               model.sample_rate / 2000])
        ax_s.set_title(title, fontsize=9)
        ax_s.set_ylabel("kHz")
        ax_l.imshow(latent, origin="lower", aspect="auto", cmap="coolwarm", vmin=-3, vmax=3)
        ax_l.axhline(k - 0.5, color="black", linewidth=1.5)
        ax_l.set_title(f"latent: structure < {k} <= texture", fontsize=9)
        ax_l.set_ylabel("channel")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)


def _generation(out: Path, model_name: str, model) -> list:
    """STAR-Gen: the bundled generator makes two sounds from text, and a generated latent
    becomes the texture of the speech example. Skipped, with a note, when there is no
    generator for this model."""
    from .gen.texture import texture_from_prompt
    from .gen.store import load_generator, read_generator
    from .morph import MorphParams
    from .engine import render_offline

    try:
        _, meta = read_generator("default")
        if meta["vae"] != model_name:
            _say(f"\n(no generation: the bundled generator belongs to model '{meta['vae']}')")
            return []
        gen = load_generator("default")
    except StarError as exc:  # no bundled generator, or no text encoder
        _say(f"\n(no generation: {exc})")
        return []
    rows = []
    _say()
    for prompt in GEN_PROMPTS:
        t0 = time.perf_counter()
        latent = gen.generate_latent(prompt, 4.0, seed=0)
        with torch.no_grad():
            audio = gen.vae.decode(latent.mean, num_samples=latent.num_samples)[0].numpy()
        elapsed = time.perf_counter() - t0
        target = out / f"generated-{_slug(prompt)}.wav"
        write_audio(target, audio, gen.sample_rate)
        rows.append((f"generated: {prompt}", audio, latent.mean[0].numpy()))
        _say(f"generate: '{prompt}' -> {target}  (4.0 s in {elapsed:.1f} s)")
    speech = _examples().get("speech")
    if speech is not None:
        texture = texture_from_prompt(GEN_TEXTURE_PROMPT, model_name, "default", seed=1)
        audio, rate = read_audio(speech)
        morphed = render_offline(model, audio, rate, MorphParams(texture_amount=1.0),
                                 texture_source=texture)
        target = out / "speech+generated-texture.wav"
        write_audio(target, morphed, rate)
        _say(f"morph: speech with the texture of '{GEN_TEXTURE_PROMPT}' -> {target}")
    return rows


def _say(text: str = "") -> None:
    """Print a line above the progress bar (tqdm.write redraws the bar below it)."""
    from tqdm import tqdm

    tqdm.write(text, file=sys.stdout)


def _slug(text: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in text.lower()).split()[:6])


def run_demo(output="star-demo", model_name="default", progress=None) -> dict:
    """Reconstruct, swap, generate and plot; ``progress(total)`` may return a tqdm-like bar
    (``update``, ``close``) that counts the demo's steps."""
    start = time.perf_counter()
    model = load_vae(model_name)
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    _say(f"model '{model_name}': {model.config.family}+{model.config.backbone}, "
          f"{model.sample_rate} Hz, latent {model.config.latent_channels} ch @ "
          f"{model.latent_rate:.1f} Hz (structure {model.config.structure_channels}), "
          f"latency {1000 * model.latency_samples / model.sample_rate:.1f} ms")
    latents, rows, metrics = {}, [], {}
    with torch.no_grad():  # warm-up, so that the timings below are steady-state
        model.reconstruct(torch.zeros(1, model.config.audio_channels, 4 * model.hop))
    _say(f"\n{'clip':<16} {'seconds':>7} {'SI-SDR dB':>9} {'mel dist':>9} {'STFT dist':>9} "
          f"{'x real time':>11}")
    examples = _examples()
    swaps = sum(2 for a, b in SWAP_PAIRS if a in examples and b in examples)
    bar = progress(len(examples) + swaps + 2) if progress else None
    step = bar.update if bar is not None else (lambda n=1: None)
    for name, path in examples.items():
        audio, rate = read_audio(path)
        batch, layout = to_model_batch(audio, rate, model.sample_rate, model.config.audio_channels)
        t0 = time.perf_counter()
        with torch.no_grad():
            latent = model.encode(batch)
            recon_batch = model.decode(latent)
        elapsed = time.perf_counter() - t0
        recon = from_model_batch(recon_batch, layout)
        write_audio(out / f"{name}.recon.wav", recon, rate)
        seconds = audio.shape[-1] / rate
        pair = torch.from_numpy(recon), torch.from_numpy(audio)
        row = {"si_sdr_db": si_sdr(recon, audio),
               "mel_distance": float(mel_distance(*pair, rate)),
               "stft_distance": float(stft_distance(*pair)),
               "realtime_x": seconds / elapsed}
        metrics[name] = row
        latents[name] = (latent, layout)
        rows += [(f"{name} (input)", audio, latent.mean[0].numpy()),
                 (f"{name} (reconstruction)", recon, latent.mean[0].numpy())]
        _say(f"{name:<16} {seconds:>7.2f} {row['si_sdr_db']:>9.2f} {row['mel_distance']:>9.3f} "
              f"{row['stft_distance']:>9.3f} "
              f"{row['realtime_x']:>10.1f}x")
        step()
    _say()
    for a, b in SWAP_PAIRS:
        if a not in latents or b not in latents:
            continue
        for first, second in ((a, b), (b, a)):
            (la, layout), (lb, _) = latents[first], latents[second]
            swapped = la.swap_texture(lb)
            with torch.no_grad():
                audio = from_model_batch(model.decode(swapped), layout)
            target = out / f"{first}-structure+{second}-texture.wav"
            write_audio(target, audio, layout.sample_rate)
            rows.append((f"structure of {first} + texture of {second}", audio,
                         swapped.mean[0].numpy()))
            _say(f"swap: structure of {first} + texture of {second} -> {target}")
            step()
    rows += _generation(out, model_name, model)
    step()
    picture = out / "demo.png"
    _plot(rows, model, picture)
    step()
    if bar is not None:
        bar.close()
    _say(f"\nwrote {len(list(out.glob('*.wav')))} WAV files and {picture} "
          f"in {time.perf_counter() - start:.1f} s")
    return metrics
