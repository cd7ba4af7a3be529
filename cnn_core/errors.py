"""User-facing error types: anything raised as a UserError is shown as one clear line."""


class UserError(Exception):
    """A problem with the user's input or environment (not a bug): shown without a traceback."""


class ConfigError(UserError, ValueError):
    """An invalid configuration value; ``field`` names the offending setting."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class DataError(UserError):
    """Missing, corrupt or unusable data."""


class CheckpointError(UserError):
    """A missing, corrupt or incompatible checkpoint."""


class ImageError(DataError):
    """A file that is not a usable image: ``file`` names it, ``reason`` says why in one line."""

    def __init__(self, file: str, reason: str):
        super().__init__(f"{file}: {reason}")
        self.file = file
        self.reason = reason
