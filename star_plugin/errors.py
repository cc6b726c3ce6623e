"""Errors that users see: each names the file or argument and says what is wrong."""


class StarError(Exception):
    """Base class for every user-facing error raised by star_plugin."""


class ModelFileError(StarError):
    """A model directory or file is missing, corrupt, truncated or incompatible."""


class AudioFileError(StarError):
    """An audio file cannot be read or written."""


class ConfigError(StarError):
    """A configuration value is invalid."""


class StreamingError(StarError):
    """A model or state cannot be used for streaming."""


class OutputError(AudioFileError):
    """An output cannot be written: it names an input or another output, its place does not
    accept files, or the OS refused the write (no space left, file-size limit, read-only)."""
