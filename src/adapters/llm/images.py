"""Images in chat turns: fetched once, when the message is sent, before anything is stored.

http(s) URLs must point at public addresses (no loopback, private or link-local hosts:
Parley must not become a way to reach the operator's internal network) unless the
operator allows it; ``data:`` URIs must hold an image within the size limit. What is
kept is a ``data:`` URI, which every provider takes (Ollama takes nothing else, Gemini
and Anthropic want the bytes), so a later turn never depends on the URL still working
(signed URLs expire)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import socket
from urllib.parse import urlsplit

import httpx

from application.ports import FetchedImage
from domain.errors import InvalidInput

ALLOWED_TYPES = {"image/png", "image/jpeg", "image/webp", "image/gif", "image/heic", "image/heif"}
# One answer for a host that does not resolve and one that resolves to a private address,
# so the message does not tell a probe which internal names exist.
NOT_PUBLIC = "Image URLs must point at a public host that answers."
_HEIF_BRANDS = {b"heic": "image/heic", b"heix": "image/heic", b"heif": "image/heif"}
_HEIF_BRANDS |= {b"mif1": "image/heif", b"msf1": "image/heif", b"hevc": "image/heic"}


def sniffed_type(data: bytes) -> str | None:
    """The image type the bytes themselves say (their magic numbers), or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp":
        return _HEIF_BRANDS.get(data[8:12])
    return None


def _invalid(reason: str) -> InvalidInput:
    return InvalidInput({"image_url": [reason]})


class ImageFetcher:
    def __init__(
        self, http: httpx.AsyncClient, *, max_bytes: int, allow_private: bool = False
    ) -> None:
        self._http = http
        self._max_bytes = max_bytes
        self._allow_private = allow_private

    async def fetch(self, image_url: str) -> FetchedImage:
        if image_url.startswith("data:"):
            mime, _ = self._decode_data_uri(image_url)
            return FetchedImage(mime_type=mime, data_uri=image_url)
        mime, data = await self.load(image_url)
        return FetchedImage(
            mime_type=mime, data_uri=f"data:{mime};base64,{base64.b64encode(data).decode()}"
        )

    async def check(self, image_url: str) -> None:
        if image_url.startswith("data:"):
            self._decode_data_uri(image_url)
            return
        parts = urlsplit(image_url)
        try:
            port = parts.port  # raises for a port out of range
        except ValueError:
            port = None
            parts = parts._replace(netloc="")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _invalid("Enter an http(s) URL or a data: URI of an image.")
        await self._check_host(parts.hostname, port or (443 if parts.scheme == "https" else 80))

    async def load(self, image_url: str) -> tuple[str, bytes]:
        """The image's MIME type and bytes, within the limits."""
        if image_url.startswith("data:"):
            return self._decode_data_uri(image_url)
        await self.check(image_url)
        try:
            async with self._http.stream("GET", image_url, follow_redirects=False) as response:
                if response.status_code != 200:
                    raise _invalid(f"The image URL answered HTTP {response.status_code}.")
                declared = response.headers.get("content-type", "").split(";")[0].strip().lower()
                if declared not in ALLOWED_TYPES:
                    raise _invalid(
                        "The URL does not point at a PNG, JPEG, WebP, GIF or HEIC image."
                    )
                chunks, size = [], 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > self._max_bytes:
                        raise _invalid(f"The image is larger than {self._max_bytes} bytes.")
                    chunks.append(chunk)
        except (httpx.HTTPError, httpx.InvalidURL):
            raise _invalid("The image could not be downloaded.") from None
        data = b"".join(chunks)
        # What the bytes are, not what the server called them, is what a provider checks.
        mime = sniffed_type(data)
        if mime is None:
            raise _invalid("The URL does not point at a PNG, JPEG, WebP, GIF or HEIC image.")
        return mime, data

    def _decode_data_uri(self, uri: str) -> tuple[str, bytes]:
        header, sep, payload = uri[5:].partition(",")
        mime, _, encoding = header.partition(";")
        if not sep or encoding != "base64" or mime.lower() not in ALLOWED_TYPES:
            raise _invalid("A data: URI must be a base64 PNG, JPEG, WebP, GIF or HEIC image.")
        if len(payload) * 3 // 4 > self._max_bytes:
            raise _invalid(f"The image is larger than {self._max_bytes} bytes.")
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise _invalid("The data: URI is not valid base64.") from None
        if sniffed_type(data) != mime.lower():
            raise _invalid(f"The data: URI does not hold a {mime.lower()} image.")
        return mime.lower(), data

    async def _check_host(self, host: str, port: int) -> None:
        if self._allow_private:
            return
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except (OSError, UnicodeError):  # UnicodeError: a label IDNA cannot encode
            raise _invalid(NOT_PUBLIC) from None
        for info in infos:
            address = ipaddress.ip_address(info[4][0])
            if not address.is_global:
                raise _invalid(NOT_PUBLIC)
