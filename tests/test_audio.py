"""Audio I/O and conversions, with real files on disk."""
import os
import warnings

import numpy as np
import pytest
import soundfile as sf

from star_plugin import audio as A
from star_plugin.audio import (
    TruncatedAudioWarning,
    as_channels_first,
    convert_channels,
    load_for_model,
    read_audio,
    resample,
    sanitize,
    write_audio,
)
from star_plugin.errors import AudioFileError


def tone(channels, n, sr, freq=440.0, amp=0.5):
    t = np.arange(n) / sr
    rows = [amp * (0.5 + 0.5 / (c + 1)) * np.sin(2 * np.pi * freq * t + c) for c in range(channels)]
    return np.asarray(rows, dtype=np.float32).reshape(channels, n)


def peak_freq(x, sr):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spec) * sr / len(x)


def no_temp_files(directory):
    return [f for f in os.listdir(directory) if f.endswith(".tmp")] == []


# ----------------------------------------------------------------------------- round trips

@pytest.mark.parametrize("ext", [".wav", ".flac", ".ogg"])
@pytest.mark.parametrize("sr", [8000, 44100, 96000, 192000])
@pytest.mark.parametrize("channels", [1, 2, 6])
def test_round_trip(tmp_path, ext, sr, channels):
    n = sr // 20  # 50 ms
    x = tone(channels, n, sr, freq=sr / 32)
    lfe_warning = ext == ".ogg" and channels == 6
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = write_audio(tmp_path / f"a{ext}", x, sr)
    assert any("LFE" in str(w.message) for w in caught) == lfe_warning
    y, sr2 = read_audio(path)
    assert sr2 == sr and y.dtype == np.float32 and y.shape == (channels, n)
    if ext == ".wav":  # FLOAT: bit exact
        np.testing.assert_array_equal(y, x)
    elif ext == ".flac":  # PCM_24
        assert np.abs(y - x).max() < 2.0 ** -22
    else:  # Vorbis is lossy: the waveform is still clearly the same
        # 6-channel Vorbis low-passes channel 6 as the LFE (write_audio warns about it)
        for c in range(5 if lfe_warning else channels):
            corr = np.dot(x[c], y[c]) / (np.linalg.norm(x[c]) * np.linalg.norm(y[c]))
            assert corr > 0.95
    assert no_temp_files(tmp_path)


def test_wav_float_default_keeps_values_above_one(tmp_path):
    x = np.array([[0.0, 1.5, -2.0, 0.25]], np.float32)
    write_audio(tmp_path / "loud.wav", x, 48000)
    assert sf.info(str(tmp_path / "loud.wav")).subtype == "FLOAT"
    np.testing.assert_array_equal(read_audio(tmp_path / "loud.wav")[0], x)


def test_flac_clipping_warns(tmp_path):
    x = np.array([[0.0, 1.5, -0.5]], np.float32)
    with pytest.warns(UserWarning, match="clip"):
        write_audio(tmp_path / "loud.flac", x, 48000)
    y, _ = read_audio(tmp_path / "loud.flac")
    assert y.max() <= 1.0


def test_explicit_subtype_and_bad_subtype(tmp_path):
    write_audio(tmp_path / "a.wav", np.zeros((2, 10), np.float32), 44100, subtype="PCM_16")
    assert sf.info(str(tmp_path / "a.wav")).subtype == "PCM_16"
    with pytest.raises(ValueError, match="subtype 'FLOAT'.*flac"):
        write_audio(tmp_path / "a.flac", np.zeros((2, 10), np.float32), 44100, subtype="FLOAT")


def test_zero_length_file(tmp_path):
    for ext in (".wav", ".ogg"):
        write_audio(tmp_path / f"z{ext}", np.zeros((2, 0), np.float32), 44100)
        y, sr = read_audio(tmp_path / f"z{ext}")
        assert y.shape == (2, 0) and y.dtype == np.float32 and sr == 44100
    with pytest.raises(AudioFileError, match="0-sample"):
        write_audio(tmp_path / "z.flac", np.zeros((2, 0), np.float32), 44100)
    assert not (tmp_path / "z.flac").exists() and no_temp_files(tmp_path)


def test_one_sample_file(tmp_path):
    x = np.array([[0.25], [-0.5]], np.float32)
    write_audio(tmp_path / "one.wav", x, 22050)
    y, sr = read_audio(tmp_path / "one.wav")
    np.testing.assert_array_equal(y, x)
    assert sr == 22050


def test_mono_1d_input_and_int16(tmp_path):
    write_audio(tmp_path / "m.wav", np.array([0, 16384, -32768], np.int16), 8000)
    y, _ = read_audio(tmp_path / "m.wav")
    np.testing.assert_array_equal(y, [[0.0, 0.5, -1.0]])


def test_parent_directories_created(tmp_path):
    path = tmp_path / "a" / "b" / "c.wav"
    write_audio(path, np.zeros((1, 4), np.float32), 16000)
    assert path.is_file()


# ----------------------------------------------------------------------------- bad input

def test_missing_directory_empty(tmp_path):
    with pytest.raises(AudioFileError, match=r"nope\.wav'.*does not exist"):
        read_audio(tmp_path / "nope.wav")
    with pytest.raises(AudioFileError, match="directory"):
        read_audio(tmp_path)
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioFileError, match=r"empty\.wav'.*empty"):
        read_audio(tmp_path / "empty.wav")


def test_corrupt_file_names_file(tmp_path):
    path = tmp_path / "noise.wav"
    path.write_bytes(np.random.default_rng(0).bytes(4000))
    with pytest.raises(AudioFileError) as exc:
        read_audio(path)
    msg = str(exc.value)
    assert "noise.wav" in msg and "not a recognised audio format" in msg
    assert "soundfile:" in msg and "pedalboard:" in msg


def test_truncated_wav_returns_prefix_with_warning(tmp_path):
    x = tone(2, 4000, 44100)
    path = write_audio(tmp_path / "t.wav", x, 44100)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.warns(TruncatedAudioWarning, match=r"t\.wav.*4000 frames"):
        y, sr = read_audio(path)
    assert 0 < y.shape[1] < 4000
    np.testing.assert_array_equal(y, x[:, : y.shape[1]])
    with pytest.raises(AudioFileError, match="truncated"):
        read_audio(path, strict=True)


def test_truncated_wav_header_only(tmp_path):
    path = write_audio(tmp_path / "h.wav", tone(1, 1000, 8000), 8000)
    path.write_bytes(path.read_bytes()[:30])
    with pytest.raises(AudioFileError, match=r"h\.wav"):
        read_audio(path)


def test_truncated_flac_returns_prefix_with_warning(tmp_path):
    x = tone(2, 44100, 44100)
    path = write_audio(tmp_path / "t.flac", x, 44100)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.warns(TruncatedAudioWarning, match=r"t\.flac"):
        y, _ = read_audio(path)
    assert 0 < y.shape[1] < 44100
    assert np.abs(y - x[:, : y.shape[1]]).max() < 2.0 ** -22  # a correct prefix, not silence


def test_truncated_ogg_is_an_error(tmp_path):
    # libsndfile cannot open a Vorbis file cut in half (or finds 0 frames in it): an error
    path = write_audio(tmp_path / "t.ogg", tone(2, 20000, 44100), 44100)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # never a silent empty or partial result
        with pytest.raises(AudioFileError, match=r"t\.ogg'.*(corrupt|truncated)"):
            read_audio(path)


def test_truncated_mp3_warns(tmp_path):
    x = tone(2, 20000, 44100)
    path = write_audio(tmp_path / "t.mp3", x, 44100)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.warns(TruncatedAudioWarning, match=r"t\.mp3.*of the 20000 frames"):
        y, _ = read_audio(path)
    assert 0 < y.shape[1] < 20000


def test_pedalboard_fallback(tmp_path, monkeypatch):
    x = tone(2, 500, 32000)
    path = write_audio(tmp_path / "f.wav", x, 32000)

    def refuse(*args, **kwargs):
        raise RuntimeError("Format not recognised.")

    monkeypatch.setattr(A.sf, "SoundFile", refuse)
    y, sr = read_audio(path)
    assert sr == 32000 and y.shape == (2, 500)
    np.testing.assert_allclose(y, x, atol=1e-7)


def test_write_errors_name_the_argument(tmp_path):
    with pytest.raises(AudioFileError, match=r"\.xyz"):
        write_audio(tmp_path / "a.xyz", np.zeros((1, 4), np.float32), 44100)
    with pytest.raises(ValueError, match="sample_rate"):
        write_audio(tmp_path / "a.wav", np.zeros((1, 4), np.float32), 0)
    with pytest.raises(ValueError, match="sample_rate"):
        write_audio(tmp_path / "a.wav", np.zeros((1, 4), np.float32), 44100.5)
    with pytest.raises(ValueError, match="audio"):
        write_audio(tmp_path / "a.wav", np.zeros((1, 2, 4), np.float32), 44100)
    with pytest.raises(ValueError, match=r"audio\.T"):
        write_audio(tmp_path / "a.wav", np.zeros((44100, 2), np.float32), 44100)
    with pytest.raises(ValueError, match="NaN/Inf.*sanitize"):
        write_audio(tmp_path / "a.wav", np.array([[0.0, np.nan]], np.float32), 44100)
    assert os.listdir(tmp_path) == []


def test_failed_write_keeps_existing_file(tmp_path, monkeypatch):
    path = tmp_path / "keep.mp3"
    x = tone(1, 4410, 44100)
    write_audio(path, x, 44100)
    before = path.read_bytes()
    # argument error: nothing is touched
    with pytest.raises(ValueError):
        write_audio(path, np.zeros((2, 3, 4), np.float32), 44100)
    # encoder error (MP3 has no 96 kHz): the temp file is removed, the old file survives
    with pytest.raises(AudioFileError, match=r"keep\.mp3"):
        write_audio(path, x, 96000)
    assert path.read_bytes() == before and no_temp_files(tmp_path)
    # failure at the very last step
    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(A.os, "replace", broken_replace)
    with pytest.raises(AudioFileError, match="No space left"):
        write_audio(path, x * 0.5, 44100)
    assert path.read_bytes() == before and no_temp_files(tmp_path)


# ----------------------------------------------------------------------------- sanitize

def test_sanitize():
    x = np.array([[0.5, np.nan, np.inf], [-np.inf, -0.25, 1.0]], np.float32)
    y, n_bad = sanitize(x)
    assert n_bad == 3
    np.testing.assert_array_equal(y, [[0.5, 0, 0], [0, -0.25, 1.0]])
    assert np.isnan(x[0, 1])  # input untouched
    y2, n2 = sanitize(y)
    assert n2 == 0 and y2 is not y and y2.dtype == np.float32


def test_load_for_model_nan_file(tmp_path):
    x = tone(2, 9600, 96000)
    x[0, 10] = np.nan
    x[1, 20] = np.inf
    sf.write(str(tmp_path / "bad.wav"), x.T, 96000, subtype="FLOAT")  # bypasses write_audio
    with pytest.warns(UserWarning, match=r"bad\.wav.*2 NaN/Inf"):
        y, info = load_for_model(tmp_path / "bad.wav", 48000, 1)
    assert y.shape == (1, 4800) and np.isfinite(y).all()
    assert info["n_bad_samples"] == 2
    assert info["sample_rate"] == 96000 and info["channels"] == 2 and info["samples"] == 9600
    assert info["resampled"] and info["channels_converted"]
    assert info["duration_s"] == pytest.approx(0.1)


def test_load_for_model_upmix(tmp_path):
    write_audio(tmp_path / "m.flac", tone(1, 2205, 22050), 22050)
    y, info = load_for_model(tmp_path / "m.flac", 44100, 2)
    assert y.shape == (2, 4410)
    np.testing.assert_array_equal(y[0], y[1])
    assert info["n_bad_samples"] == 0


# ----------------------------------------------------------------------------- resample

def test_resample_length_and_frequency():
    x = tone(2, 48000, 48000, freq=1000.0)
    y = resample(x, 48000, 44100)
    assert y.dtype == np.float32 and y.shape == (2, 44100)
    assert peak_freq(y[0], 44100) == pytest.approx(1000.0, abs=1.0)


@pytest.mark.parametrize("sr_in", [11025, 22050])
def test_resample_odd_rates_to_96k(sr_in):
    x = tone(1, sr_in, sr_in, freq=440.0)
    y = resample(x, sr_in, 96000)
    assert y.shape == (1, 96000)
    assert peak_freq(y[0], 96000) == pytest.approx(440.0, abs=1.0)
    # level preserved in the middle (away from the filter's edges)
    assert np.abs(y[0, 10000:-10000]).max() == pytest.approx(np.abs(x).max(), rel=0.01)


def test_resample_edge_cases():
    assert resample(np.zeros((2, 0), np.float32), 44100, 48000).shape == (2, 0)
    assert resample(np.ones((3, 1), np.float32), 11025, 96000).shape == (3, 9)  # round(8.71)
    assert resample(np.ones((1, 1), np.float32), 96000, 8000).shape == (1, 0)  # round(0.083)
    y = resample(tone(6, 800, 8000), 8000, 192000)
    assert y.shape == (6, 19200)
    assert resample(np.zeros(100, np.float32), 8000, 16000).shape == (200,)  # 1-D stays 1-D
    x = tone(2, 10, 44100)
    same = resample(x, 44100, 44100)
    np.testing.assert_array_equal(same, x)
    assert not np.shares_memory(same, x)


@pytest.mark.parametrize("kwargs, name", [
    (dict(sr_in=0, sr_out=44100), "sr_in"),
    (dict(sr_in=44100, sr_out=-1), "sr_out"),
    (dict(sr_in=44100.5, sr_out=48000), "sr_in"),
    (dict(sr_in=True, sr_out=48000), "sr_in"),
    (dict(sr_in=44100, sr_out="48000"), "sr_out"),
])
def test_resample_bad_rates(kwargs, name):
    with pytest.raises(ValueError, match=name):
        resample(np.zeros((1, 10), np.float32), **kwargs)


# ----------------------------------------------------------------------------- channels

def test_convert_channels_rules():
    x = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    same = convert_channels(x, 2)
    np.testing.assert_array_equal(same, x)
    assert not np.shares_memory(same, x)
    np.testing.assert_array_equal(convert_channels(x, 1), [[2.0, 3.0]])  # mean
    m = np.array([[0.5, -0.5]], np.float32)
    np.testing.assert_array_equal(convert_channels(m, 3), np.repeat(m, 3, axis=0))
    # stereo -> quad repeats L R L R
    np.testing.assert_array_equal(convert_channels(x, 4), x[[0, 1, 0, 1]])


def test_convert_channels_51_to_stereo_hand_values():
    # 5.1 order L R C LFE Ls Rs, one sample each: L=1, R=0, C=1, LFE=5, Ls=0, Rs=1
    x = np.array([[1.0], [0.0], [1.0], [5.0], [0.0], [1.0]], np.float32)
    g = 1 / np.sqrt(2)
    left = (1 + g * 1 + g * 0) / (1 + 2 * g)
    right = (0 + g * 1 + g * 1) / (1 + 2 * g)  # the LFE (5.0) is dropped
    np.testing.assert_allclose(convert_channels(x, 2), [[left], [right]], rtol=1e-6)


def test_convert_channels_fold_and_never_louder():
    x = np.arange(7, dtype=np.float32)[:, None]  # 7 channels -> 3: fold j, j+3, j+6
    np.testing.assert_allclose(convert_channels(x, 3), [[(0 + 3 + 6) / 3], [(1 + 4) / 2],
                                                        [(2 + 5) / 2]])
    rng = np.random.default_rng(1)
    for m in range(1, 9):
        a = rng.uniform(-1, 1, (m, 50)).astype(np.float32)
        for n in range(1, 9):
            assert np.abs(convert_channels(a, n)).max() <= np.abs(a).max() + 1e-6
    with pytest.raises(ValueError, match="channels"):
        convert_channels(x, 0)


def test_as_channels_first():
    assert as_channels_first(np.zeros(5)).shape == (1, 5)
    assert as_channels_first(np.zeros(5)).dtype == np.float32
    np.testing.assert_array_equal(as_channels_first(np.array([[-32768, 16384]], np.int16)),
                                  [[-1.0, 0.5]])
    np.testing.assert_array_equal(as_channels_first(np.array([[2 ** 30]], np.int32)), [[0.5]])
    np.testing.assert_array_equal(as_channels_first(np.array([0, 128, 255], np.uint8)),
                                  [[-1.0, 0.0, 127 / 128]])
    with pytest.raises(ValueError, match=r"\(44100, 2\).*audio\.T"):
        as_channels_first(np.zeros((44100, 2), np.float32))
    with pytest.raises(ValueError, match="int64"):
        as_channels_first(np.zeros((1, 4), np.int64))
    with pytest.raises(ValueError, match="shape"):
        as_channels_first(np.zeros((1, 2, 3), np.float32))
    with pytest.raises(ValueError, match="at least one channel"):
        as_channels_first(np.zeros((0, 3), np.float32))
