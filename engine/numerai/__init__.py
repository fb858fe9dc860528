"""Talking to Numerai: credentials, the API client, its operations and the upload flows.

Modules: ``credentials`` (where the API key comes from; redaction of the secret),
``client`` (numerapi's GraphQL calls behind nx's error handling, checked presigned
PUTs), ``operations`` (one function per API operation), ``upload`` (model uploads,
submissions, diagnostics), ``predictions`` (checks of a predictions file).
"""

from nx.engine._lazy import lazy_exports

_EXPORTS = {
    "Credentials": "credentials",
    "find_credentials": "credentials",
    "load_credentials": "credentials",
    "redact": "credentials",
    "NumeraiClient": "client",
    "whoami": "operations",
    "list_models": "operations",
    "create_model": "operations",
    "current_round": "operations",
    "tournaments": "operations",
    "datasets": "operations",
    "leaderboard": "operations",
    "profile": "operations",
    "performance": "operations",
    "graphql": "operations",
    "ValidationFailedError": "upload",
    "upload_pickle": "upload",
    "model_status": "upload",
    "submit_predictions": "upload",
    "validate_predictions": "predictions",
    "run_diagnostics": "upload",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
