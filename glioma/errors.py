"""Exceptions whose message is the one line a user sees (no traceback)."""


class GliomaError(Exception):
    """Base class: the message names the thing and the reason, on one line."""


class ConfigError(GliomaError):
    """A parameter value that cannot be used."""


class DataError(GliomaError):
    """Input data that stops a whole step (missing root, no valid subject, ...)."""


class SubjectError(GliomaError):
    """One subject cannot be used; the step records it in exclusions.csv and goes on."""


class MissingWeightsError(GliomaError):
    """Weights this machine does not have; the message says what to download and where."""
