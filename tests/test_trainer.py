"""The VAE trainer on a tiny model and a tiny on-disk corpus: exact resume, kill -9, DDP, bad data."""
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import TINY_TRAIN_MODEL, make_tiny_corpus
from star_plugin.errors import ConfigError
from star_plugin.model_io import load_vae
from star_plugin.training.dataset import ClipPool, CorruptClipWarning
from star_plugin.training.train_config import TrainConfig, apply_overrides
from star_plugin.training.trainer import CHECKPOINT, Trainer


def tiny_train_config(corpus, steps=6, **sections) -> TrainConfig:
    raw = {"name": "tiny", "model": dict(TINY_TRAIN_MODEL),
           "data": {"corpus": str(corpus), "clip_seconds": 0.25},
           "optim": {"batch_size": 2, "steps": steps, "warmup_steps": 2},
           "eval": {"every_steps": 0, "clips": 2, "seconds": 0.25, "audio_samples": 1},
           "log_every": 1, "threads": 1}
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    return TrainConfig.from_dict(raw)


def write_config(path, config: TrainConfig) -> Path:
    path.write_text(json.dumps(config.to_dict()))
    return path


def weights(model_dir):
    return load_vae(model_dir).state_dict()


def test_training_writes_model_logs_and_eval(tiny_corpus, tmp_path):
    config = tiny_train_config(tiny_corpus, steps=4, eval={"every_steps": 2})
    model_dir = Trainer(config, tmp_path / "run").fit()
    model = load_vae(model_dir)
    assert model.config.latent_channels == 8
    lines = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert lines[0].startswith("step,") and len(lines) == 5
    evals = [json.loads(l) for l in (tmp_path / "run" / "eval.jsonl").read_text().splitlines()]
    assert [e["step"] for e in evals] == [2, 4]
    assert len(evals[-1]["kl_per_channel"]) == 8
    assert (tmp_path / "run" / "eval" / "kl-profile-step-0000004.png").stat().st_size > 1000
    assert list((tmp_path / "run" / "eval" / "step-0000004").glob("*.wav"))


def test_resume_continues_exactly(tiny_corpus, tmp_path):
    adv = {"enabled": True, "n_ffts": [128, 64], "channels": 4}
    straight = Trainer(tiny_train_config(tiny_corpus, steps=6, adversarial=adv), tmp_path / "a").fit()
    Trainer(tiny_train_config(tiny_corpus, steps=6, adversarial=adv), tmp_path / "b").fit(until=3)
    config = tiny_train_config(tiny_corpus, steps=6, adversarial=adv)
    resumed = Trainer(config, tmp_path / "b", resume=True)
    assert resumed.step == 3
    resumed_dir = resumed.fit()
    a, b = weights(straight), weights(resumed_dir)
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_existing_run_is_not_overwritten_without_resume(tiny_corpus, tmp_path):
    Trainer(tiny_train_config(tiny_corpus, steps=1), tmp_path / "run").fit()
    with pytest.raises(ConfigError, match="--resume"):
        Trainer(tiny_train_config(tiny_corpus, steps=1), tmp_path / "run")


def test_kill_9_mid_training_resumes_from_last_checkpoint(tiny_corpus, tmp_path):
    config = tiny_train_config(tiny_corpus, steps=100000, checkpoint_steps=2)
    path = write_config(tmp_path / "train.json", config)
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "star_plugin.cli", "train", "vae", "--config", str(path),
           "--out", str(run)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (run / CHECKPOINT).exists():
            time.sleep(0.2)
        time.sleep(1.0)  # let it write a few more checkpoints
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert (run / CHECKPOINT).exists()
    state = torch.load(run / CHECKPOINT, weights_only=False)  # not corrupt
    saved_step = state["step"]
    assert saved_step >= 2 and saved_step % 2 == 0
    resumed = Trainer(apply_overrides(config, [f"optim.steps={saved_step + 2}"]), run, resume=True)
    assert resumed.step == saved_step
    resumed.fit()
    assert torch.load(run / CHECKPOINT, weights_only=False)["step"] == saved_step + 2


def test_sigterm_saves_checkpoint_and_model(tiny_corpus, tmp_path):
    config = tiny_train_config(tiny_corpus, steps=100000)
    path = write_config(tmp_path / "train.json", config)
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "star_plugin.cli", "train", "vae", "--config",
                             str(path), "--out", str(run)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (run / "log.csv").exists():
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 0, proc.stderr.read()
    step = torch.load(run / CHECKPOINT, weights_only=False)["step"]
    assert step > 0
    assert load_vae(run / "model") is not None


def test_two_process_ddp_with_gloo(tiny_corpus, tmp_path):
    config = tiny_train_config(tiny_corpus, steps=3)
    path = write_config(tmp_path / "train.json", config)
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "star_plugin.cli", "train", "vae", "--config", str(path), "--out", str(run)],
        capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    state = torch.load(run / CHECKPOINT, weights_only=False)
    assert state["step"] == 3
    assert load_vae(run / "model").config.latent_channels == 8


def test_corrupt_corpus_file_is_skipped_with_a_warning(tmp_path):
    corpus = make_tiny_corpus(tmp_path / "corpus")
    broken = corpus / "audio" / "clip-001.flac"
    broken.write_bytes(b"fLaC" + b"\x00garbage" * 10)
    with pytest.warns(CorruptClipWarning, match="clip-001.flac"):
        pool = ClipPool(corpus, "train", 16000, verbose=False)
    assert len(pool) == 7
    model_dir = Trainer(tiny_train_config(corpus, steps=1), tmp_path / "run").fit()
    assert model_dir.exists()


def test_config_errors_are_clear(tmp_path, tiny_corpus):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"optim": {"stpes": 3}}))
    with pytest.raises(ConfigError, match="stpes"):
        TrainConfig.from_file(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        TrainConfig.from_file(tmp_path / "missing.json")
    with pytest.raises(ConfigError, match="corpus"):
        Trainer(TrainConfig(), tmp_path / "run")
    toml = tmp_path / "t.toml"
    toml.write_text(f'name = "t"\n[data]\ncorpus = "{tiny_corpus}"\n[optim]\nsteps = 2\n')
    assert TrainConfig.from_file(toml).optim.steps == 2


def test_v2_losses_rate_control_and_curves(tiny_corpus, tmp_path):
    """Phase-derivative losses are logged, the rate controller moves the beta-field scale
    towards its target, and the curves export writes CSVs and a PNG."""
    config = tiny_train_config(
        tiny_corpus, steps=6, eval={"every_steps": 3},
        loss={"l1": 0.0, "inst_freq": 1.0, "group_delay": 0.5, "kl_warmup_steps": 1,
              "rate_target_bps": 1e6, "rate_control_speed": 0.05})
    Trainer(config, tmp_path / "run").fit()
    import csv
    rows = list(csv.DictReader(open(tmp_path / "run" / "log.csv")))
    assert all(0.0 <= float(r["inst_freq"]) <= 2.0 for r in rows)
    scales = [float(r["kl_scale"]) for r in rows]
    assert scales[-1] < scales[0]   # the rate is far below 1 Mbit/s: the betas must shrink
    evals = [json.loads(l) for l in (tmp_path / "run" / "eval.jsonl").read_text().splitlines()]
    for key in ("fsc", "level_error_db", "buzz_ratio", "fitted_rate_bits_per_second"):
        assert key in evals[-1]
    assert evals[-1]["fitted_rate_bits_per_second"] <= evals[-1]["rate_bits_per_second"] + 1e-6
    from star_plugin.training.curves import export_curves
    png = export_curves(tmp_path / "run", tmp_path / "curves")
    assert png.stat().st_size > 10000
    assert (tmp_path / "curves" / "eval_log.csv").read_text().count("\n") == 3


def test_second_stage_freezes_the_encoder_with_a_period_discriminator(tiny_corpus, tmp_path):
    first = Trainer(tiny_train_config(tiny_corpus, steps=2), tmp_path / "one").fit()
    config = tiny_train_config(tiny_corpus, steps=3, init_from=str(first),
                               adversarial={"enabled": True, "kind": "mpd", "periods": [2, 3],
                                            "channels": 4, "freeze_encoder": True})
    second = Trainer(config, tmp_path / "two").fit()
    before, after = weights(first), weights(second)
    encoder = [k for k in before if k.startswith("encoder.")]
    decoder = [k for k in before if k.startswith("decoder.") and before[k].is_floating_point()]
    assert all(torch.equal(before[k], after[k]) for k in encoder)
    assert any(not torch.equal(before[k], after[k]) for k in decoder)
    rows = (tmp_path / "two" / "log.csv").read_text().splitlines()
    assert rows[0].split(",").index("disc") > 0 and rows[-1].split(",")[-2] != ""


def test_init_from_a_different_architecture_is_refused(tiny_corpus, tmp_path):
    first = Trainer(tiny_train_config(tiny_corpus, steps=1), tmp_path / "one").fit()
    model = dict(TINY_TRAIN_MODEL, hidden=TINY_TRAIN_MODEL.get("hidden", 16) * 2)
    config = tiny_train_config(tiny_corpus, steps=1, init_from=str(first), model=model)
    with pytest.raises(ConfigError, match="init_from.*hidden"):
        Trainer(config, tmp_path / "two")


def test_partial_init_takes_the_matching_weights_of_another_architecture(tiny_corpus, tmp_path):
    """A v2 model (ConvNeXt decoder, phase-vocoder head) starts from a v1 model's encoder:
    every tensor whose name and shape match is taken, the rest keep their initialisation."""
    first = Trainer(tiny_train_config(tiny_corpus, steps=1), tmp_path / "one").fit()
    model = dict(TINY_TRAIN_MODEL, decoder_blocks=1, head="phase-vocoder")
    trainer = Trainer(tiny_train_config(tiny_corpus, steps=1, init_from=str(first),
                                        init_strict=False, model=model), tmp_path / "two")
    source, mine = weights(first), trainer.model.state_dict()
    encoder = [k for k in source if k.startswith("encoder.")]
    assert encoder and all(torch.equal(source[k], mine[k]) for k in encoder)
    assert any(k not in source for k in mine)  # the new decoder's own layers


def test_snapshot_exports_the_checkpoints_ema_weights(tiny_corpus, tmp_path):
    from star_plugin.training.snapshot import snapshot
    exported = Trainer(tiny_train_config(tiny_corpus, steps=3), tmp_path / "run").fit()
    snap = snapshot(tmp_path / "run", tmp_path / "snap")
    a, b = weights(exported), weights(snap)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ConfigError, match="checkpoint"):
        snapshot(tmp_path / "nothing-here", tmp_path / "x")


def test_direct_head_frequency_loss_is_logged_and_old_logs_are_rewritten(tiny_corpus, tmp_path):
    model = dict(TINY_TRAIN_MODEL, decoder_blocks=1, head="phase-vocoder")
    run = tmp_path / "run"
    run.mkdir()
    (run / "log.csv").write_text("step,seconds,loss\n1,0.5,3.0\n")  # an older trainer's log
    Trainer(tiny_train_config(tiny_corpus, steps=2, model=model,
                              loss={"head_inst_freq": 1.0}), run).fit()
    import csv
    rows = list(csv.DictReader(open(run / "log.csv")))
    assert rows[0]["step"] == "1" and rows[0]["loss"] == "3.0" and rows[0]["head_inst_freq"] == ""
    assert all(0.0 <= float(r["head_inst_freq"]) <= 2.0 for r in rows[1:])


def test_head_frequency_distance_is_low_for_the_ideal_head_input():
    import math
    from test_synthesis_head import HOP, N_FFT, partial_frames, sine
    from star_plugin.phase_loss import head_frequency_distance
    from star_plugin.synthesis import PhaseVocoderHead
    head = PhaseVocoderHead(N_FFT, HOP)
    audio = torch.from_numpy(sine(331.7, 80 * HOP))[None, None]
    ideal = head_frequency_distance(partial_frames(head, 331.7, 80, True), audio, N_FFT, HOP)
    untrained = head_frequency_distance(partial_frames(head, 331.7, 80, False), audio, N_FFT, HOP)
    assert float(ideal) < 0.05 < 0.4 < float(untrained)


def test_harmonic_head_continues_a_phase_vocoder_run_with_its_f0_loss(tiny_corpus, tmp_path):
    """A harmonic-head model takes every weight of a phase-vocoder run (its projection keeps
    the name ``conv``), starts the rate controller where asked, and logs the f0 loss."""
    pv = dict(TINY_TRAIN_MODEL, decoder_blocks=1, head="phase-vocoder")
    first = Trainer(tiny_train_config(tiny_corpus, steps=1, model=pv), tmp_path / "one").fit()
    harmonic = dict(pv, head="harmonic", harmonics=4)
    run = tmp_path / "two"
    trainer = Trainer(tiny_train_config(tiny_corpus, steps=2, model=harmonic, init_from=str(first),
                                        init_strict=False,
                                        loss={"f0": 1.0, "head_inst_freq": 1.0,
                                              "latent_f0": 1.0, "comb_amplitude": 1.0,
                                              "kl_scale_init": 0.25}), run)
    assert abs(trainer.log_kl_scale - math.log(0.25)) < 1e-9
    source, mine = weights(first), trainer.model.state_dict()
    assert all(torch.equal(source[k], mine[k]) for k in source)
    assert {k for k in mine if k not in source} == {k for k in mine if ".harmonic." in k}
    trainer.fit()
    import csv
    rows = list(csv.DictReader(open(run / "log.csv")))
    assert all(0.0 <= float(r["f0_octaves"]) < 8.0 for r in rows)
    assert all(0.0 <= float(r["latent_f0_octaves"]) < 20.0 for r in rows)
    assert all(0.0 <= float(r["comb_amplitude"]) < 30.0 for r in rows)
    with pytest.raises(ConfigError, match="latent_f0_channel"):
        Trainer(tiny_train_config(tiny_corpus, steps=1, loss={"latent_f0": 1.0,
                                                              "latent_f0_channel": 99}),
                tmp_path / "four")
    with pytest.raises(ConfigError, match="kl_scale_init"):
        Trainer(tiny_train_config(tiny_corpus, steps=1, loss={"kl_scale_init": 0.0}),
                tmp_path / "three")
