"""A blocking HTTP GET over `wasi:http/outgoing-handler` (0.2), for plugins.

The host decides what a request may reach (the manifest's `network.allow`)
and adds brokered credentials itself; a refused request fails with the
`wasi:http` error code, raised here as `HttpError`.
"""

from urllib.parse import urlsplit

from componentize_py_types import Err, Ok
from wit_world.imports import outgoing_handler, streams
from wit_world.imports.wasi_http_types import (
    Fields,
    Method_Get,
    OutgoingRequest,
    Scheme_Http,
    Scheme_Https,
)

# Largest response body read; a longer one is an error, not a partial read.
MAX_BODY = 1 << 20


class HttpError(Exception):
    """The request could not be sent or the response not read."""


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """GET `url`; returns (status, body)."""
    parts = urlsplit(url)
    fields = Fields.from_list([(k, v.encode()) for k, v in (headers or {}).items()])
    request = OutgoingRequest(fields)
    request.set_method(Method_Get())
    request.set_scheme(Scheme_Https() if parts.scheme == "https" else Scheme_Http())
    request.set_authority(parts.netloc)
    request.set_path_with_query(parts.path + (f"?{parts.query}" if parts.query else ""))
    try:
        future = outgoing_handler.handle(request, None)
    except Err as e:
        raise HttpError(str(e.value)) from None
    with future:
        outcome = future.get()
        while outcome is None:
            future.subscribe().block()
            outcome = future.get()
    if not isinstance(outcome, Ok) or not isinstance(outcome.value, Ok):
        error = outcome.value if isinstance(outcome, Ok) else outcome
        raise HttpError(str(getattr(error, "value", error)))
    response = outcome.value.value
    status = response.status()
    body = response.consume()
    stream = body.stream()
    chunks, size = [], 0
    while True:
        try:
            chunk = stream.blocking_read(64 * 1024)
        except Err as e:
            if isinstance(e.value, streams.StreamError_Closed):
                break
            raise HttpError("the response body could not be read") from None
        size += len(chunk)
        if size > MAX_BODY:
            raise HttpError(f"the response body is over {MAX_BODY} bytes")
        chunks.append(chunk)
    return status, b"".join(chunks)
