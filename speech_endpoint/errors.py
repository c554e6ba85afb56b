"""The exception types for a client's mistakes and for a misconfigured endpoint."""


class ClientError(ValueError):
    """A request the client can fix. Its message is shown to the client as-is (HTTP 4xx),
    so it must be plain, specific and free of secrets and stack traces."""


class ConfigurationError(RuntimeError):
    """The endpoint is misconfigured (raised at start-up, never per request)."""
