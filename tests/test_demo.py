"""star demo end to end with a tiny model and the bundled example clips."""
import soundfile as sf

from star_plugin.demo import run_demo

from conftest import tiny_model


def test_demo_writes_reconstructions_swaps_and_picture(tmp_path, capsys):
    from star_plugin.model_io import save_vae

    import io

    from tqdm import tqdm

    model_dir = save_vae(tiny_model(sample_rate=44100), tmp_path / "m")
    out = tmp_path / "demo"
    bars = []  # star demo's progress bar, here drawn into a buffer instead of a terminal
    metrics = run_demo(out, model_name=str(model_dir), progress=lambda total: bars.append(
        tqdm(total=total, file=io.StringIO(), disable=False)) or bars[-1])
    assert len(bars) == 1 and bars[0].n == bars[0].total == 4 + 4 + 2  # clips, swaps, gen, plot
    names = {p.name for p in out.iterdir()}
    assert {"melody.recon.wav", "drums.recon.wav", "demo.png"} <= names
    assert "melody-structure+texture-texture.wav" in names
    assert len(metrics) == 4 and all("si_sdr_db" in m for m in metrics.values())
    info = sf.info(out / "drums.recon.wav")
    assert info.samplerate == 44100 and info.duration > 2.9
    assert (out / "demo.png").stat().st_size > 10_000
    assert "SI-SDR" in capsys.readouterr().out


def test_demo_on_the_bundled_models_generates_from_text(tmp_path, capsys):
    """The README's main job: the bundled VAE and the bundled STAR-Gen generator."""
    import numpy as np

    out = tmp_path / "demo"
    run_demo(out)
    generated = sorted(out.glob("generated-*.wav"))
    assert len(generated) == 2
    for path in generated + [out / "speech+generated-texture.wav"]:
        audio, rate = sf.read(path)
        assert rate == 44100 and np.isfinite(audio).all() and np.abs(audio).max() > 1e-3
    assert sf.info(generated[0]).duration == 4.0
    assert "generate: 'a soft flute" in capsys.readouterr().out


def test_demo_skips_generation_for_a_model_without_a_generator(tmp_path, capsys):
    from star_plugin.model_io import save_vae

    model_dir = save_vae(tiny_model(sample_rate=44100), tmp_path / "m")
    run_demo(tmp_path / "demo", model_name=str(model_dir))
    assert "no generation: the bundled generator belongs to model 'default'" in \
        capsys.readouterr().out
    assert not list((tmp_path / "demo").glob("generated-*.wav"))
