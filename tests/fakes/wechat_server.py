"""A fake WeChat open platform API on 127.0.0.1 speaking its real wire format.

``/sns/oauth2/access_token`` and ``/sns/userinfo`` answer like WeChat: JSON bodies with a
text/plain content type, and errors as ``{"errcode": N, "errmsg": "..."}`` inside an
HTTP 200. Codes are single use, as on WeChat."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit


@dataclass
class WeChatUser:
    openid: str
    unionid: str | None = None
    nickname: str = "微信用户"


class FakeWeChatServer:
    def __init__(self, *, app_id: str = "wx-test-app", app_secret: str = "wx-test-secret") -> None:
        self.app_id = app_id
        self.app_secret = app_secret
        self._codes: dict[str, WeChatUser] = {}
        self._tokens: dict[str, WeChatUser] = {}
        self._failures: list[dict[str, Any]] = []
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def issued_tokens(self) -> list[str]:
        """The access tokens handed out so far, oldest first."""
        with self._lock:
            return list(self._tokens)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def grant(self, code: str, user: WeChatUser) -> None:
        """A user scanned the QR code: WeChat will redirect with this ``code``."""
        with self._lock:
            self._codes[code] = user

    def fail_next(self, errcode: int, errmsg: str = "system error") -> None:
        with self._lock:
            self._failures.append({"errcode": errcode, "errmsg": errmsg})

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, path: str, query: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            self.requests.append((path, query))
            if self._failures:
                return self._failures.pop(0)
            if path == "/sns/oauth2/access_token":
                if query.get("appid") != self.app_id:
                    return {"errcode": 40013, "errmsg": "invalid appid"}
                if query.get("secret") != self.app_secret:
                    return {"errcode": 40125, "errmsg": "invalid appsecret"}
                if query.get("grant_type") != "authorization_code":
                    return {"errcode": 40002, "errmsg": "invalid grant_type"}
                user = self._codes.pop(query.get("code", ""), None)
                if user is None:
                    return {"errcode": 40029, "errmsg": "invalid code"}
                token = f"ACCESS_{len(self._tokens)}_{user.openid}"
                self._tokens[token] = user
                body: dict[str, Any] = {
                    "access_token": token,
                    "expires_in": 7200,
                    "refresh_token": f"REFRESH_{token}",
                    "openid": user.openid,
                    "scope": "snsapi_login",
                }
                if user.unionid:
                    body["unionid"] = user.unionid
                return body
            if path == "/sns/userinfo":
                user = self._tokens.get(query.get("access_token", ""))
                if user is None or query.get("openid") != user.openid:
                    return {
                        "errcode": 40001,
                        "errmsg": "invalid credential, access_token is invalid",
                    }
                profile: dict[str, Any] = {
                    "openid": user.openid,
                    "nickname": user.nickname,
                    "sex": 0,
                    "province": "",
                    "city": "",
                    "country": "CN",
                    "headimgurl": "",
                    "privilege": [],
                }
                if user.unionid:
                    profile["unionid"] = user.unionid
                return profile
            return {"errcode": 40066, "errmsg": "invalid url"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                body = json.dumps(fake._answer(parts.path, query), ensure_ascii=False).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
