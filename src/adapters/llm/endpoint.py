"""One provider's HTTP endpoint: a JSON POST, or a stream of SSE ``data:`` payloads, with
every failure classified once (``upstream.py``) whatever the wire format.

Bodies are encoded and decoded with msgspec: several times faster than the stdlib json
httpx would use, and a chat request carries the whole history."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec

from adapters.llm.transport import post
from adapters.llm.upstream import from_status, from_transport, malformed


@dataclass(frozen=True)
class Endpoint:
    provider: str  # the name users and logs see
    http: httpx.AsyncClient
    headers: Mapping[str, str]
    secret: str = field(repr=False)  # scrubbed from every message
    # httpx parses a str URL on every request (~5% of a chat turn's CPU); a provider has
    # a handful of URLs, parsed once here.
    _parsed: dict[str, httpx.URL] = field(default_factory=dict, repr=False, compare=False)

    def _url(self, url: str) -> httpx.URL:
        parsed = self._parsed.get(url)
        if parsed is None:
            parsed = self._parsed[url] = httpx.URL(url)
        return parsed

    async def post_json(self, url: str, body: Any, params: Mapping[str, str] | None = None) -> Any:
        try:
            answer = await post(
                self.http, self._url(url), msgspec.json.encode(body), self.headers, params
            )
        except httpx.TransportError as error:
            raise from_transport(self.provider, error) from None
        if answer.status != 200:
            text = answer.content.decode("utf-8", "replace")
            raise from_status(self.provider, answer.response(), text, self.secret)
        try:
            return msgspec.json.decode(answer.content)
        except msgspec.DecodeError:
            raise malformed(self.provider, "body is not JSON") from None

    async def data_lines(
        self, url: str, body: Any, params: Mapping[str, str] | None = None
    ) -> AsyncGenerator[str, None]:
        """The payloads of a streamed answer's ``data:`` lines. Transport errors while
        reading pass through as httpx's: each wire format knows what an early end means.
        Iterate it inside ``contextlib.aclosing`` so that stopping early closes the
        connection at once."""
        async with self.http.stream(
            "POST",
            self._url(url),
            content=msgspec.json.encode(body),
            headers=self.headers,
            params=params,
        ) as response:
            if response.status_code != 200:
                text = (await response.aread()).decode("utf-8", "replace")
                raise from_status(self.provider, response, text, self.secret)
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    yield line[5:].strip()

    def decoded(self, payload: str, what: str) -> dict[str, Any]:
        """A stream payload as a JSON object, or a malformed-response failure."""
        try:
            document = msgspec.json.decode(payload)
        except msgspec.DecodeError:
            raise malformed(self.provider, f"{what} is not JSON") from None
        if not isinstance(document, dict):
            raise malformed(self.provider, f"{what} is not an object")
        return document
