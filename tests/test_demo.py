"""star demo end to end with a tiny model and the bundled example clips."""
import soundfile as sf

from star_plugin.demo import run_demo

from conftest import tiny_model


def test_demo_writes_reconstructions_swaps_and_picture(tmp_path, capsys):
    from star_plugin.model_io import save_vae

    model_dir = save_vae(tiny_model(sample_rate=44100), tmp_path / "m")
    out = tmp_path / "demo"
    metrics = run_demo(out, model_name=str(model_dir))
    names = {p.name for p in out.iterdir()}
    assert {"melody.recon.wav", "drums.recon.wav", "demo.png"} <= names
    assert "melody-structure+texture-texture.wav" in names
    assert len(metrics) == 4 and all("si_sdr_db" in m for m in metrics.values())
    info = sf.info(out / "drums.recon.wav")
    assert info.samplerate == 44100 and info.duration > 2.9
    assert (out / "demo.png").stat().st_size > 10_000
    assert "SI-SDR" in capsys.readouterr().out
