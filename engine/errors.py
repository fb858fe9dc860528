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


class ExportError(NxError):
    """A model cannot be exported, or a pickle fails a rule of Numerai's runtime."""


class RuntimeEnvError(NxError):
    """A Numerai runtime environment is missing or cannot be created."""


class ApiError(NetworkError):
    """Numerai's API answered with an error (HTTP status or a GraphQL ``errors`` list)."""


class AuthError(ApiError):
    """Numerai credentials are missing, malformed, rejected, or lack a scope."""


class SweepError(NxError):
    """A sweep file is invalid or a sweep cannot run."""


class ReportError(NxError):
    """An experiment cannot be shown, plotted or reported (e.g. no results, no overlap)."""
