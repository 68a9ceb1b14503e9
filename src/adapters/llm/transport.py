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

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from httpx_aiohttp.transport import map_aiohttp_exceptions

# Enough for a small machine's concurrency; a request beyond it waits for a free
# connection (bounded by the pool timeout) rather than opening ever more sockets.
MAX_CONNECTIONS = 200


def provider_http_client(timeout: httpx.Timeout) -> httpx.AsyncClient:
    """A client for one provider: its own pool, Parley's timeouts, no proxy from env,
    no cookies."""
    transport = _RemappingTransport(client=_cookieless_session)
    client = _CookielessClient(timeout=timeout, transport=transport)
    client.direct = _DirectPost(
        transport,
        aiohttp.ClientTimeout(
            sock_connect=timeout.connect, sock_read=timeout.read, connect=timeout.pool
        ),
    )
    return client


def _cookieless_session() -> aiohttp.ClientSession:
    """aiohttp's session keeps a cookie jar of its own, under httpx's: a cookie one
    user's answer set (Cloudflare's ``__cf_bm`` in front of a provider) rode on the next
    user's call. Its dummy jar keeps none. The pool and TLS as httpx-aiohttp would make
    them (httpx's certificate bundle, not whatever the system has)."""
    connector = aiohttp.TCPConnector(
        limit=MAX_CONNECTIONS,
        keepalive_timeout=httpx.Limits().keepalive_expiry,
        ssl=httpx.create_ssl_context(),
    )
    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    content: bytes
    headers: Any  # httpx's Headers, or aiohttp's: both a case-insensitive mapping

    def response(self) -> httpx.Response:
        """The answer as httpx's, for reading a refusal (``upstream.from_status``)."""
        return httpx.Response(self.status, headers=list(self.headers.items()), content=self.content)


async def post(
    client: httpx.AsyncClient,
    url: httpx.URL,
    content: bytes,
    headers: Mapping[str, str],
    params: Mapping[str, str] | None = None,
) -> Answer:
    """A POST answered in full, through httpx; for a provider's own client, straight on
    the aiohttp session under its httpx transport. Why: httpx's client around the
    transport (building an ``httpx.Request``, its auth and redirect steps, wrapping the
    answer and its stream) was ~11% of a chat turn's CPU (bench/results) and adds
    nothing the JSON POST needs. The same session, pool, timeouts and error mapping as
    the transport's, so a failure reads as the same httpx error either way; a client
    that is traced (``through_httpx_only``) keeps httpx, whose instrumentation sees every
    request."""
    direct = client.direct if isinstance(client, _CookielessClient) else None
    if direct is None:
        response = await client.post(url, content=content, headers=headers, params=params)
        return Answer(response.status_code, response.content, response.headers)
    target = str(url if params is None else url.copy_merge_params(params))
    try:
        with map_aiohttp_exceptions():
            async with direct.transport.session().post(
                target,
                data=content,
                headers=headers,
                allow_redirects=False,
                timeout=direct.timeout,
            ) as answered:
                return Answer(answered.status, await answered.read(), answered.headers)
    except httpx.TransportError as error:
        raise _remapped(error) from error.__cause__


def through_httpx_only(client: httpx.AsyncClient) -> None:
    """Every request of ``client`` goes through httpx from now on (``post``)."""
    if isinstance(client, _CookielessClient):
        client.direct = None


class _NoCookies(httpx.Cookies):
    def extract_cookies(self, response: httpx.Response) -> None:
        pass


class _CookielessClient(httpx.AsyncClient):
    """One client carries every user's calls to a provider, so a cookie set by an answer
    to one user must not ride along on the next user's call (the providers' APIs take
    none). httpx has no switch for its cookie jar; not storing any also saves parsing
    every response for Set-Cookie through ``http.cookiejar`` (~5% of a chat turn)."""

    _no_cookies = _NoCookies()
    direct: _DirectPost | None = None

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
    def session(self) -> aiohttp.ClientSession:
        """The session requests go through, made on first use as the parent does."""
        if not isinstance(self.client, aiohttp.ClientSession):
            self.client = self.get_client()
        return self.client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await super().handle_async_request(request)
        except httpx.TransportError as error:
            raise _remapped(error) from error.__cause__
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _RemappingStream(response.stream)
        return response


@dataclass(frozen=True, slots=True)
class _DirectPost:
    transport: _RemappingTransport
    timeout: aiohttp.ClientTimeout
