"""STAR Studio, offscreen (QT_QPA_PLATFORM=offscreen, set in conftest), with a tiny VAE and a
tiny (untrained) generator: real widgets, real worker threads, real files on disk."""
import json

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("PyQt6.QtWidgets", reason="the studio tests need the gui/test extra")
pytest.importorskip("pytestqt", reason="the studio tests need pytest-qt (the test extra)")

from PyQt6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl  # noqa: E402
from PyQt6.QtGui import QDropEvent  # noqa: E402
from PyQt6.QtWidgets import QMessageBox  # noqa: E402

from conftest import tiny_model  # noqa: E402
from star_plugin.audio import read_audio  # noqa: E402
from star_plugin.gen.latent_cache import vae_fingerprint  # noqa: E402
from star_plugin.gen.model import GenConfig, StarGen  # noqa: E402
from star_plugin.gen.store import save_generator  # noqa: E402
from star_plugin.gui.main_window import StudioWindow  # noqa: E402
from star_plugin.gui.playback import Player  # noqa: E402
from star_plugin.live import audio_devices  # noqa: E402
from star_plugin.model_io import save_vae  # noqa: E402

RATE = 16000
WAIT_MS = 120_000


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A tiny VAE and a generator for it (random weights: the plumbing, not the quality)."""
    root = tmp_path_factory.mktemp("studio-models")
    vae_dir = save_vae(tiny_model(), root / "vae")
    import torch

    torch.manual_seed(0)
    gen = StarGen(GenConfig(latent_channels=8, width=32, layers=2, heads=2, max_frames=2048,
                            patch=2, max_text_tokens=24))
    gen_dir = save_generator(gen, root / "gen", vae=str(vae_dir),
                             vae_sha256=vae_fingerprint(vae_dir))
    return str(vae_dir), str(gen_dir)


def _settings(path):
    return QSettings(str(path), QSettings.Format.IniFormat)


def _open_window(qtbot, models, settings, generator=True):
    vae_dir, gen_dir = models
    window = StudioWindow(vae_dir, gen_dir if generator else None, settings)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.model is not None and not window.tasks.busy, timeout=WAIT_MS)
    return window


@pytest.fixture
def window(qtbot, models, tmp_path):
    w = _open_window(qtbot, models, _settings(tmp_path / "studio.ini"))
    yield w
    w.close()


def _write(path, audio, rate=RATE):
    sf.write(str(path), audio.T, rate, subtype="FLOAT" if str(path).endswith(".wav") else None)
    return path


def _tone(freq=220.0, seconds=0.5, rate=RATE):
    t = np.arange(int(seconds * rate)) / rate
    return (0.4 * np.sin(2 * np.pi * freq * t))[None].astype(np.float32)


def _noise(seconds=0.5, rate=RATE, seed=0):
    rng = np.random.default_rng(seed)
    return (0.2 * rng.standard_normal((1, int(seconds * rate)))).astype(np.float32)


def _visible_dialogs(window):
    return [b for b in window.findChildren(QMessageBox) if b.isVisible()]


def _open_into(qtbot, window, path, slot=None):
    before = len(window.clips)
    window.open_files([path], slot)
    qtbot.waitUntil(lambda: len(window.clips) == before + 1, timeout=WAIT_MS)
    return window.clips[-1]


def _image(widget):
    return widget.grab().toImage()


# ------------------------------------------------------------------------- generate
def test_generate_adds_clips_and_updates_the_views(qtbot, window):
    panel = window.generate_panel
    panel.prompt.setText("a warm analog pad")
    panel.seconds.setValue(0.3)
    panel.steps.setValue(2)
    panel.variations.setValue(2)
    empty_latent, empty_spec = _image(window.views.latent), _image(window.views.spectrogram)
    task = window.generate()
    assert task is not None
    with qtbot.waitSignal(task.signals.ended, timeout=WAIT_MS):
        pass
    assert [c.origin for c in window.clips] == ["generated", "generated"]
    assert window.clip_list.count() == 2
    first = window.clips[0]
    assert first.audio.shape == (1, int(round(0.3 * RATE)))
    assert np.isfinite(first.audio).all()
    assert first.latent is not None and first.latent.channels == 8
    # the views show the first generated clip, with its analysis
    assert window.views.clip is first
    a = first.analysis
    assert a.latent.shape[0] == 8 and a.kl.shape == (8,) and a.structure_channels == 3
    assert np.isfinite(a.kl).all() and (a.kl >= 0).all()
    assert _image(window.views.latent) != empty_latent
    assert _image(window.views.spectrogram) != empty_spec
    assert panel.progress.value() == 2 and panel.generate_button.isEnabled()
    # the second variation differs from the first (its own noise)
    assert not np.allclose(window.clips[0].audio, window.clips[1].audio)


def test_cancel_stops_a_generation(qtbot, window):
    panel = window.generate_panel
    panel.steps.setValue(500)
    panel.seconds.setValue(2.0)
    panel.variations.setValue(4)
    task = window.generate()
    # Progress arrives on the GUI thread while the worker runs: the UI is not blocked.
    with qtbot.waitSignal(task.signals.progress, timeout=WAIT_MS):
        pass
    assert panel.cancel_button.isEnabled() and not panel.generate_button.isEnabled()
    with qtbot.waitSignal(task.signals.cancelled, timeout=WAIT_MS):
        window.cancel()
    qtbot.waitUntil(lambda: window.generation is None, timeout=WAIT_MS)
    assert window.clips == []
    assert panel.progress.value() < 500
    assert "cancelled" in panel.status.text().lower()
    assert panel.generate_button.isEnabled() and not panel.cancel_button.isEnabled()


def test_generation_errors_become_dialogs(qtbot, window):
    window.generate_panel.prompt.setText("   ")
    window.generate()
    qtbot.waitUntil(lambda: window.last_error is not None, timeout=WAIT_MS)
    title, message = window.last_error
    assert title == "Generation failed" and "prompt is empty" in message
    assert _visible_dialogs(window)
    assert window.clips == []


def test_without_a_generator_generate_says_why(qtbot, models, tmp_path):
    w = _open_window(qtbot, models, _settings(tmp_path / "s.ini"), generator=False)
    try:
        assert not w.generate_panel.generate_button.isEnabled()
        assert w.generate() is None
        assert w.last_error[0] == "Generation is unavailable"
    finally:
        w.close()


# ------------------------------------------------------------------------- morph
def test_morph_two_files_renders_a_different_sound_with_a_b_and_export(qtbot, window, tmp_path):
    content_path = _write(tmp_path / "content.wav", _tone())
    texture_path = _write(tmp_path / "texture.flac", _noise())
    content = _open_into(qtbot, window, content_path, window.morph_panel.content)
    texture = _open_into(qtbot, window, texture_path, window.morph_panel.texture_source)
    assert window.morph_panel.content.clip_id() == content.id
    assert window.morph_panel.texture_source.clip_id() == texture.id
    window.morph_panel.texture_amount.set_value(1.0)
    task = window.render()
    with qtbot.waitSignal(task.signals.ended, timeout=WAIT_MS):
        pass
    out = window.clips[-1]
    assert out.origin == "morph" and out.original is content
    assert out.audio.shape == content.audio.shape and np.isfinite(out.audio).all()
    assert np.abs(out.audio - content.audio).max() > 1e-3
    assert window.views.clip is out and out.analysis is not None
    # A/B: the views switch to the original and back
    assert window.ab_action.isEnabled()
    window.ab_action.setChecked(True)
    assert window.views.clip is content
    window.ab_action.setChecked(False)
    assert window.views.clip is out
    # export, WAV and FLAC, read back
    wav = window.export_clip(out, tmp_path / "out.wav")
    flac = window.export_clip(out, tmp_path / "out.flac")
    audio, rate = read_audio(wav)
    assert rate == RATE and np.array_equal(audio, out.audio)
    audio, _ = read_audio(flac)
    assert np.abs(audio - out.audio).max() < 1e-4
    assert window.export_clip(out, tmp_path / "out.xyz") is None
    assert "wav or .flac" in window.last_error[1]
    assert not (tmp_path / "out.xyz").exists()


def test_effect_chain_after_the_star_stage_changes_the_render(qtbot, window, tmp_path):
    _open_into(qtbot, window, _write(tmp_path / "c.wav", _tone()), window.morph_panel.content)

    def render():
        task = window.render()
        with qtbot.waitSignal(task.signals.ended, timeout=WAIT_MS):
            pass
        return window.clips[-1].audio

    dry = render()
    chain = window.chain_panel
    chain.add_effect("after", "Gain")
    assert chain.set_parameter("after", 0, "gain_db", -20.0)
    quiet = render()
    ratio = np.sqrt(np.mean(quiet ** 2) / np.mean(dry ** 2))
    assert ratio == pytest.approx(0.1, rel=0.02)
    # a value Pedalboard refuses is reported and not kept
    chain.add_effect("before", "Reverb")
    assert not chain.set_parameter("before", 0, "room_size", 5.0)
    assert "room_size" in chain.problem.text()
    assert chain.stages("before")[0]["params"]["room_size"] == 0.5
    # the saved chain runs in `star chain`
    saved = window.save_chain_to(tmp_path / "chain.json")
    data = json.loads(saved.read_text())
    assert [s["type"] for s in data["stages"]] == ["Reverb", "star", "Gain"]
    from star_plugin.chain import StarChain

    built = StarChain.from_dict(data, model=window.model_name)
    assert len(built) == 3 and len(built.star_effects()) == 1
    # a texture that is not a file cannot go into the chain file: the user is told
    window.generate_panel.steps.setValue(1)
    window.generate_panel.seconds.setValue(0.2)
    window.generate_panel.variations.setValue(1)
    task = window.generate()
    with qtbot.waitSignal(task.signals.ended, timeout=WAIT_MS):
        pass
    window.morph_panel.texture_source.select(window.clips[-1].id)
    data = json.loads(window.save_chain_to(tmp_path / "chain2.json").read_text())
    assert data["stages"][1]["texture_source"] is None
    assert any("without its texture" in b.windowTitle() or "is not a file" in b.text()
               for b in _visible_dialogs(window))


def test_drop_a_file_and_a_clip_onto_the_sources(qtbot, window, tmp_path):
    path = _write(tmp_path / "dropped.wav", _tone(330.0))
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    slot = window.morph_panel.content
    slot.dropEvent(QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime,
                              Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier))
    qtbot.waitUntil(lambda: len(window.clips) == 1, timeout=WAIT_MS)
    assert slot.clip_id() == window.clips[0].id
    # a clip dragged from the clip list (its mime data) onto the texture slot
    window.clip_list.setCurrentRow(0)
    clip_mime = window.clip_list.mimeData([window.clip_list.item(0)])
    texture_slot = window.morph_panel.texture_source
    assert texture_slot.clip_id() is None
    texture_slot.dropEvent(QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, clip_mime,
                                      Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier))
    assert texture_slot.clip_id() == window.clips[0].id


def test_files_dropped_on_the_window_open_and_the_clip_list_takes_no_drops(qtbot, window, tmp_path):
    paths = [_write(tmp_path / "a.wav", _tone()), _write(tmp_path / "b.wav", _noise())]
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    assert not window.clip_list.acceptDrops()  # its drops go on to the window
    window.dropEvent(QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime,
                                Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier))
    qtbot.waitUntil(lambda: len(window.clips) == 2, timeout=WAIT_MS)
    assert sorted(c.name for c in window.clips) == ["a", "b"]


def test_render_without_content_says_what_to_do(window):
    assert window.render() is None
    assert window.last_error[0] == "Nothing to morph" and "Ctrl+O" in window.last_error[1]


# ------------------------------------------------------------------------- presets, undo
def test_preset_save_load_round_trip_and_undo(qtbot, window, tmp_path):
    panel = window.morph_panel
    panel.structure_amount.set_value(0.25)
    panel.texture_amount.set_value(0.6)
    panel.temperature.set_value(1.5)
    panel.mode.setCurrentIndex(panel.mode.findData("match"))
    panel.seed.setValue(7)
    saved_state = panel.state()
    path = panel.save_preset_to(tmp_path / "my-preset")
    assert path.name == "my-preset.json" and path.is_file()
    assert json.loads(path.read_text())["params"]["mode"] == "match"
    panel.set_state({**saved_state, "structure_amount": 1.0, "mode": "loop", "seed": 0}, "reset")
    assert panel.state() != saved_state
    assert panel.load_preset_from(path)
    assert panel.state() == saved_state
    # undo goes back through the preset load, then the reset
    window.undo_stack.undo()
    assert panel.state()["structure_amount"] == 1.0 and panel.state()["mode"] == "loop"
    window.undo_stack.undo()
    assert panel.state() == saved_state
    window.undo_stack.redo()
    assert panel.state()["structure_amount"] == 1.0
    # a slider drag is one undo step
    index = window.undo_stack.index()
    for v in (10, 20, 30, 40):
        panel.texture_amount.slider.setValue(v)
    assert window.undo_stack.index() == index + 1
    window.undo_stack.undo()
    assert panel.state()["texture_amount"] == saved_state["texture_amount"]


def _edit_action(window, prefix):
    edit = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Edit")
    return next(a for a in edit.actions() if a.text().startswith(prefix))


def test_undo_redo_through_the_edit_menu_and_ctrl_z(qtbot, window):
    """The actions used to be garbage-collected: an Edit menu without them, a dead Ctrl+Z."""
    import gc

    from PyQt6.QtWidgets import QApplication

    gc.collect()
    slider = window.morph_panel.texture_amount.slider
    start = slider.value()
    slider.setValue(start // 2 + 7)
    changed = slider.value()
    _edit_action(window, "&Undo").trigger()
    assert slider.value() == start
    _edit_action(window, "&Redo").trigger()
    assert slider.value() == changed
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5000)
    qtbot.keyClick(window.morph_panel, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert slider.value() == start
    qtbot.keyClick(window.morph_panel, Qt.Key.Key_Z,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert slider.value() == changed


def test_mix_and_output_gain_controls(qtbot, window):
    panel = window.morph_panel
    assert panel.params().mix == 1.0 and panel.params().output_gain_db == 0.0
    panel.mix.set_value(0.4)
    panel.output_gain.set_value(-6.0)
    params = panel.params()
    assert params.mix == pytest.approx(0.4) and params.output_gain_db == pytest.approx(-6.0)
    _edit_action(window, "&Undo").trigger()
    assert panel.params().output_gain_db == 0.0 and panel.params().mix == pytest.approx(0.4)
    panel.apply_state({k: v for k, v in panel.state().items()
                       if k not in ("mix", "output_gain_db")})  # an older preset
    assert panel.params().mix == 1.0


def test_bad_presets_give_dialogs(qtbot, window, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert not window.morph_panel.load_preset_from(bad)
    assert window.last_error[0] == "Cannot load preset" and "bad.json" in window.last_error[1]
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"format": "star-morph-preset", "version": 1, "name": "w",
                                 "description": "d", "params": {"texture_amount": 3}}))
    assert not window.morph_panel.load_preset_from(wrong)
    assert "texture_amount" in window.last_error[1]
    assert _visible_dialogs(window)


def test_chain_edits_undo(window):
    chain = window.chain_panel
    chain.add_effect("before", "HighpassFilter")
    chain.add_effect("after", "Reverb")
    assert [s["type"] for s in chain.stages("after")] == ["Reverb"]
    window.undo_stack.undo()
    assert chain.stages("after") == [] and len(chain.stages("before")) == 1
    window.undo_stack.redo()
    assert [s["type"] for s in chain.stages("after")] == ["Reverb"]


# ------------------------------------------------------------------------- errors, devices
def test_unreadable_file_shows_an_error_dialog(qtbot, window, tmp_path):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" * 4)
    window.open_files([broken])
    qtbot.waitUntil(lambda: window.last_error is not None, timeout=WAIT_MS)
    title, message = window.last_error
    assert title == "Cannot open audio file" and "broken.wav" in message
    assert any("broken.wav" in b.text() for b in _visible_dialogs(window))
    assert window.clips == []
    window.open_files([tmp_path / "missing.flac"])
    qtbot.waitUntil(lambda: "missing.flac" in window.last_error[1], timeout=WAIT_MS)


def test_missing_model_gives_a_dialog_not_a_crash(qtbot, tmp_path):
    w = StudioWindow(str(tmp_path / "no-such-model"), None, _settings(tmp_path / "s.ini"))
    qtbot.addWidget(w)
    qtbot.waitUntil(lambda: w.last_error is not None, timeout=WAIT_MS)
    assert w.last_error[0] == "Cannot load the model" and "--model" in w.last_error[1]
    assert not w.morph_panel.render_button.isEnabled()
    w.close()


def test_playback_and_live_mode_explain_a_missing_device(qtbot, window, tmp_path):
    _open_into(qtbot, window, _write(tmp_path / "p.wav", _tone()))
    if Player.output_device() is not None:
        pytest.skip("this machine has an audio output; the no-device message cannot show")
    window.toggle_play()
    assert not window.player.playing
    assert any("No audio output device" in b.text() for b in _visible_dialogs(window))
    if audio_devices()[0]:
        pytest.skip("this machine has an audio input")
    window.live_action.setChecked(True)
    assert not window.live_action.isChecked() and not window.live.running
    assert any("no audio input device" in b.text() for b in _visible_dialogs(window))


def test_live_chain_has_the_panels_effects_around_the_star_stage(qtbot, window, tmp_path):
    _open_into(qtbot, window, _write(tmp_path / "t.wav", _noise()), window.morph_panel.texture_source)
    window.chain_panel.add_effect("before", "HighpassFilter")
    window.chain_panel.add_effect("after", "Gain")
    chain = window.live_chain()
    assert [type(s).__name__ for s in chain.stages] == ["HighpassFilter", "StarEffect", "Gain"]
    star = chain.star_effects()[0]
    assert star.texture_source is not None
    assert star.params.texture_amount == window.morph_panel.state()["texture_amount"]
    # it runs block by block, as live mode drives it
    block = _tone(seconds=0.05)
    out = chain.process_channels_first(block, RATE, 256, reset=False)
    assert np.isfinite(out).all()


# ------------------------------------------------------------------------- settings
def test_settings_and_recent_files_are_remembered(qtbot, models, tmp_path):
    ini = tmp_path / "remember.ini"
    w = _open_window(qtbot, models, _settings(ini))
    path = _write(tmp_path / "recent.wav", _tone())
    _open_into(qtbot, w, path)
    w.generate_panel.prompt.setText("rain on a tin roof")
    w.generate_panel.steps.setValue(33)
    w.morph_panel.structure_amount.set_value(0.4)
    w.chain_panel.add_effect("after", "Chorus")
    w.tabs.setCurrentIndex(2)
    w.close()
    again = _open_window(qtbot, models, _settings(ini))
    try:
        assert again.generate_panel.prompt.text() == "rain on a tin roof"
        assert again.generate_panel.steps.value() == 33
        assert again.morph_panel.state()["structure_amount"] == pytest.approx(0.4)
        assert [s["type"] for s in again.chain_panel.stages("after")] == ["Chorus"]
        assert again.tabs.currentIndex() == 2
        assert again.recent_files()[0] == str(path)
        assert again.recent_menu.actions()[0].text() == str(path)
        assert again.undo_stack.count() == 0  # restored settings are not an undo step
    finally:
        again.close()


def test_settings_saved_with_the_old_texture_names_restore_the_same(qtbot, models, tmp_path):
    """Morph settings saved before the amounts were renamed (structure/texture)."""
    ini = tmp_path / "old.ini"
    old = _settings(ini)
    old.setValue("morph/state", json.dumps({"structure": 0.3, "texture": 0.45,
                                            "temperature": 0.5, "mode": "hold", "seed": 3,
                                            "gains": []}))
    old.sync()
    w = _open_window(qtbot, models, _settings(ini))
    try:
        state = w.morph_panel.state()
        assert state["structure_amount"] == pytest.approx(0.3)
        assert state["texture_amount"] == pytest.approx(0.45)
        assert state["mode"] == "hold" and state["seed"] == 3 and state["mix"] == 1.0
        assert "texture" not in state and "structure" not in state
    finally:
        w.close()


def test_odd_files_open_render_and_show(qtbot, window, tmp_path):
    """One sample, six channels at 8 kHz, silence, and NaN-laden float audio."""
    rng = np.random.default_rng(3)
    six = (0.2 * rng.standard_normal((6, 4000))).astype(np.float32)
    nan = _tone(seconds=0.2)
    nan[0, ::50] = np.nan
    files = [_write(tmp_path / "one.wav", np.full((1, 1), 0.5, np.float32)),
             _write(tmp_path / "six.wav", six, rate=8000),
             _write(tmp_path / "silence.wav", np.zeros((1, 3000), np.float32)),
             _write(tmp_path / "nan.wav", nan)]
    for path in files:
        clip = _open_into(qtbot, window, path)
        assert np.isfinite(clip.audio).all() and clip.analysis is not None
        assert np.isfinite(clip.analysis.kl).all()
        window.views.grab()  # paints without error
    six_clip = window.clips[1]
    assert six_clip.audio.shape == (6, 4000) and six_clip.sample_rate == 8000
    window.morph_panel.content.select(six_clip.id)
    window.morph_panel.texture_source.select(window.clips[0].id)  # a one-sample texture
    task = window.render()
    with qtbot.waitSignal(task.signals.ended, timeout=WAIT_MS):
        pass
    out = window.clips[-1]
    assert out.origin == "morph" and out.audio.shape == (6, 4000) and out.sample_rate == 8000
    assert np.isfinite(out.audio).all()
    assert window.last_error is None


def test_playback_converts_to_the_devices_format(qapp):
    """What the player hands QtMultimedia when the device wants another rate, layout or type."""
    from PyQt6.QtMultimedia import QAudioFormat

    from star_plugin.gui.playback import _pcm

    fmt = QAudioFormat()
    fmt.setSampleRate(48000)
    fmt.setChannelCount(2)
    fmt.setSampleFormat(QAudioFormat.SampleFormat.Int16)
    audio = _tone(440.0, seconds=0.5)  # mono, 16 kHz
    audio[0, :10] = 1.5  # over full scale: clipped, not wrapped
    data = np.frombuffer(_pcm(audio, RATE, fmt), "<i2").reshape(-1, 2)
    assert data.shape == (24000, 2)
    assert np.array_equal(data[:, 0], data[:, 1])  # mono upmixed to both sides
    assert data.max() <= 32767 and data[:5, 0].min() > 20000
    fmt.setSampleFormat(QAudioFormat.SampleFormat.Float)
    fmt.setSampleRate(RATE)
    fmt.setChannelCount(1)
    floats = np.frombuffer(_pcm(audio, RATE, fmt), "<f4")
    assert np.allclose(floats[10:], audio[0, 10:])


def test_bench_studio_measures_every_phase(qtbot, models, tmp_path):
    """`star bench studio` end to end on the tiny models (the figures are in benchmarks/)."""
    from star_plugin.cli import main

    vae_dir, gen_dir = models
    out = tmp_path / "studio.json"
    assert main(["bench", "studio", "--model", vae_dir, "--generator", gen_dir, "--seconds", "0.3",
                 "--json", str(out), "--markdown", str(tmp_path / "studio.md")]) == 0
    data = json.loads(out.read_text())
    for phase in ("startup", "open_two_files", "idle", "generate", "render"):
        assert data[phase]["ticks"] > 0 and data[phase]["max_gap_ms"] >= data[phase]["median_gap_ms"]
    assert "| generate |" in (tmp_path / "studio.md").read_text()
