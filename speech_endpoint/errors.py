"""The one exception type for a client's mistakes."""


class ClientError(ValueError):
    """A request the client can fix. Its message is shown to the client as-is (HTTP 4xx),
    so it must be plain, specific and free of secrets and stack traces."""
