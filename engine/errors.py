"""The one error hierarchy of nx.

Every error a user can cause derives from :class:`NxError`. The CLI maps it to a
single red line on stderr and exit code 2; the message must name the problem and
the fix (the file, column, key or option involved and what to do about it).
"""


class NxError(Exception):
    """Base class of every error nx reports to a user."""


class DataError(NxError):
    """A data file is missing, unreadable, or has the wrong schema or content."""


class ConfigError(NxError):
    """A training or scoring configuration is invalid."""


class ScoringError(NxError):
    """Inputs to a metric cannot be scored (e.g. too many NaNs in an era)."""


class NetworkError(NxError):
    """Numerai's API or data servers could not be reached or answered an error."""
