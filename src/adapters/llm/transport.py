"""The providers' HTTP client: httpx's API, aiohttp's connection pool underneath.

Why: httpcore's pool re-scans every pooled connection for every request it queues
(encode/httpx#3215). With a chat backend's concurrency that scan, not the network, was
the largest single cost of a chat request (bench/results: Parley's httpx client alone
spent ~10 ms of CPU per call at 64 concurrent requests, the same calls over
``httpx_aiohttp.AiohttpTransport`` 0.5 ms). The adapters keep using httpx's API and its
exception types; only the transport changes.

httpx-aiohttp maps aiohttp's errors onto httpx's, but maps every
``ClientConnectionError`` -- a peer that closed or reset an established connection
included -- to ``httpx.ConnectTimeout``. Parley tells "could not connect" (the provider
is down: 503, try the fallback) from "the connection broke mid-answer" (502), so this
transport re-maps those two cases by the aiohttp error underneath.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

# Enough for a small machine's concurrency; a request beyond it waits for a free
# connection (bounded by the pool timeout) rather than opening ever more sockets.
MAX_CONNECTIONS = 200


def provider_http_client(timeout: httpx.Timeout) -> httpx.AsyncClient:
    """A client for one provider: its own pool, Parley's timeouts, no proxy from env,
    no cookies."""
    return _CookielessClient(
        timeout=timeout,
        transport=_RemappingTransport(limits=httpx.Limits(max_connections=MAX_CONNECTIONS)),
    )


class _NoCookies(httpx.Cookies):
    def extract_cookies(self, response: httpx.Response) -> None:
        pass


class _CookielessClient(httpx.AsyncClient):
    """One client carries every user's calls to a provider, so a cookie set by an answer
    to one user must not ride along on the next user's call (the providers' APIs take
    none). httpx has no switch for its cookie jar; not storing any also saves parsing
    every response for Set-Cookie through ``http.cookiejar`` (~5% of a chat turn)."""

    _no_cookies = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._no_cookies

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        pass  # httpx's constructor sets an empty jar; there is never one to keep


def _remapped(error: httpx.TransportError) -> httpx.TransportError:
    cause = error.__cause__
    if isinstance(error, httpx.ConnectTimeout) and cause is not None:
        if isinstance(cause, aiohttp.ConnectionTimeoutError):
            return error  # a real connect timeout
        if isinstance(cause, aiohttp.ClientConnectorError):
            return httpx.ConnectError(str(error))
        if isinstance(cause, aiohttp.ServerDisconnectedError):
            return httpx.RemoteProtocolError(str(error) or "server disconnected")
        return httpx.ReadError(str(error) or type(cause).__name__)
    if type(error) is httpx.TimeoutException and isinstance(cause, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(str(error))
    return error


class _RemappingStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream) -> None:
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except httpx.TransportError as error:
            raise _remapped(error) from error.__cause__

    async def aclose(self) -> None:
        await self._inner.aclose()


class _RemappingTransport(AiohttpTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await super().handle_async_request(request)
        except httpx.TransportError as error:
            raise _remapped(error) from error.__cause__
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _RemappingStream(response.stream)
        return response
