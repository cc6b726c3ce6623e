"""Sound out of the studio: clip playback through QtMultimedia, and live mode (input device ->
effect chain with the STAR stage -> output device) through the streaming engine. Both say
clearly when the machine has no audio device instead of failing somewhere deep inside."""
from __future__ import annotations

import threading
from typing import Optional

import numpy as np
from PyQt6.QtCore import QBuffer, QByteArray, QIODevice, QObject, QTimer, pyqtSignal

from star_plugin.audio import convert_channels, resample
from star_plugin.errors import StarError
from star_plugin.live import NoAudioDeviceError

NO_OUTPUT = ("No audio output device was found, so the studio cannot play sound here. Connect "
             "or enable an output (on Linux, check that PulseAudio or PipeWire is running), or "
             "export the clip (File > Export clip...) and play it in another program.")


def _format_for(device, rate: int, channels: int):
    from PyQt6.QtMultimedia import QAudioFormat

    fmt = QAudioFormat()
    fmt.setSampleRate(rate)
    fmt.setChannelCount(channels)
    fmt.setSampleFormat(QAudioFormat.SampleFormat.Float)
    return fmt if device.isFormatSupported(fmt) else device.preferredFormat()


def _pcm(audio: np.ndarray, rate: int, fmt) -> bytes:
    """(channels, n) float32 -> interleaved bytes in the device's format."""
    from PyQt6.QtMultimedia import QAudioFormat

    if fmt.sampleRate() != rate:
        audio = resample(audio, rate, fmt.sampleRate())
    if fmt.channelCount() != audio.shape[0]:
        audio = convert_channels(audio, fmt.channelCount())
    x = np.clip(audio.T, -1.0, 1.0)
    kind = fmt.sampleFormat()
    if kind == QAudioFormat.SampleFormat.Int16:
        return (x * 32767).astype("<i2").tobytes()
    if kind == QAudioFormat.SampleFormat.Int32:
        return (x * 2147483647).astype("<i4").tobytes()
    if kind == QAudioFormat.SampleFormat.UInt8:
        return ((x * 127) + 128).astype(np.uint8).tobytes()
    return x.astype("<f4").tobytes()


class Player(QObject):
    """Plays one (channels, n) signal at a time; ``position`` (seconds) drives the playhead."""

    position = pyqtSignal(float)
    playing_changed = pyqtSignal(bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._sink = self._buffer = None
        self._offset = 0.0
        self._timer = QTimer(self)
        self._timer.setInterval(40)
        self._timer.timeout.connect(self._tick)

    @staticmethod
    def output_device():
        """The default output, or None when there is none (headless machines, containers)."""
        from PyQt6.QtMultimedia import QMediaDevices

        if not QMediaDevices.audioOutputs():
            return None
        device = QMediaDevices.defaultAudioOutput()
        return None if device.isNull() else device

    @property
    def playing(self) -> bool:
        return self._sink is not None

    def play(self, audio: np.ndarray, rate: int, start_s: float = 0.0) -> None:
        """Raises ``NoAudioDeviceError`` (a message for the user) when nothing can play."""
        from PyQt6.QtMultimedia import QAudio, QAudioSink

        device = self.output_device()
        if device is None:
            raise NoAudioDeviceError(NO_OUTPUT)
        self.stop()
        channels = min(2, audio.shape[0])
        fmt = _format_for(device, rate, channels)
        start = min(max(0, int(start_s * rate)), audio.shape[1])
        data = _pcm(audio[:, start:], rate, fmt)
        self._buffer = QBuffer(self)
        self._buffer.setData(QByteArray(data))
        self._buffer.open(QIODevice.OpenModeFlag.ReadOnly)
        self._sink = QAudioSink(device, fmt, self)
        self._sink.stateChanged.connect(self._state_changed)
        self._offset = start / rate
        self._sink.start(self._buffer)
        if self._sink.error() != QAudio.Error.NoError:
            self.stop()
            raise NoAudioDeviceError(f"the audio output '{device.description()}' could not be "
                                     "opened; check that no other program holds it exclusively")
        self._timer.start()
        self.playing_changed.emit(True)

    def current_seconds(self) -> float:
        if self._sink is None:
            return 0.0
        return self._offset + self._sink.processedUSecs() / 1e6

    def _tick(self):
        if self._sink is not None:
            self.position.emit(self.current_seconds())

    def _state_changed(self, state):
        from PyQt6.QtMultimedia import QAudio

        if state == QAudio.State.IdleState:  # the buffer ran out: the clip has ended
            self.stop()

    def stop(self) -> None:
        if self._sink is None:
            return
        sink, self._sink = self._sink, None
        sink.stateChanged.disconnect(self._state_changed)
        sink.stop()
        sink.deleteLater()
        self._buffer.close()
        self._timer.stop()
        self.playing_changed.emit(False)


class LiveRunner(QObject):
    """Live mode on its own thread (``star_plugin.live.run_live``); ``stopped(message)``
    carries an error for the user, or '' when it was stopped by ``stop()``."""

    stopped = pyqtSignal(str)
    level = pyqtSignal(float)  # output peak per block, for a meter

    def __init__(self, parent=None):
        super().__init__(parent)
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self.chain = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, chain, sample_rate: int = 48000, buffer_size: int = 512) -> None:
        """Raises ``NoAudioDeviceError`` at once when there is no input or output device."""
        from star_plugin.live import pick_devices

        pick_devices()  # fails early, on the GUI thread, with the message to show
        self.chain = chain
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(chain, sample_rate, buffer_size),
                                        name="star-live", daemon=True)
        self._thread.start()

    def _run(self, chain, sample_rate, buffer_size):
        from star_plugin.live import run_live

        message = ""
        try:
            run_live(chain, sample_rate=sample_rate, buffer_size=buffer_size, stop=self._stop,
                     on_block=lambda out, _: self.level.emit(float(np.abs(out).max(initial=0.0))))
        except StarError as exc:
            message = str(exc)
        except Exception as exc:  # a device vanishing mid-stream: report, never crash
            message = f"live mode stopped: {type(exc).__name__}: {exc}"
        self.stopped.emit(message)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
