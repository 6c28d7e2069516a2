"""OAuth 1.0a request signing (RFC 5849) with HMAC-SHA256, as NetSuite Token-Based Authentication wants.

`TokenAuth` is an `httpx.Auth`: httpx calls it as each request is sent, so every attempt (retries
included) is signed with a fresh nonce and timestamp over the exact URL on the wire. The signature base
string is `METHOD&<base string URI>&<normalized parameters>`, where the URI is the scheme and host in
lowercase without a default port plus the path, and the parameters are every query parameter, any
form-encoded body parameter and the `oauth_*` protocol parameters (not the realm or the signature),
percent-encoded and sorted. The key is `<consumer secret>&<token secret>`.

The secrets live only on the instance and in the HMAC key: `repr`, logs and errors name the account.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Generator
from urllib.parse import parse_qsl, quote

import httpx

SIGNATURE_METHOD = "HMAC-SHA256"
DEFAULT_PORTS = {"http": 80, "https": 443}
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


def encode(value: str) -> str:
    """RFC 5849 3.6 percent-encoding: everything but ALPHA, DIGIT, `-`, `.`, `_` and `~`."""
    return quote(value, safe="~")


def base_string_uri(url: httpx.URL) -> str:
    """Scheme and host lowercased, the port only when not the scheme's default, the raw path (3.4.1.2)."""
    scheme, host = url.scheme.lower(), url.host.lower()
    port = f":{url.port}" if url.port is not None and url.port != DEFAULT_PORTS.get(scheme) else ""
    path = url.raw_path.split(b"?", 1)[0].decode("ascii") or "/"
    return f"{scheme}://{host}{port}{path}"


def normalized_parameters(pairs: list[tuple[str, str]]) -> str:
    """Encode each name and value, sort by name then value, join as `n=v&...` (3.4.1.3.2)."""
    encoded = sorted((encode(name), encode(value)) for name, value in pairs)
    return "&".join(f"{name}={value}" for name, value in encoded)


def signature_base_string(method: str, url: httpx.URL, pairs: list[tuple[str, str]]) -> str:
    """`METHOD&uri&params`, each part percent-encoded (3.4.1.1)."""
    parts = (method.upper(), base_string_uri(url), normalized_parameters(pairs))
    return "&".join(encode(part) for part in parts)


def hmac_sha256(base_string: str, consumer_secret: str, token_secret: str) -> str:
    """Base64 HMAC-SHA256 of the base string keyed `<consumer secret>&<token secret>` (3.4.2)."""
    key = f"{encode(consumer_secret)}&{encode(token_secret)}".encode()
    return base64.b64encode(hmac.new(key, base_string.encode(), hashlib.sha256).digest()).decode()


def request_parameters(request: httpx.Request) -> list[tuple[str, str]]:
    """The query's parameters plus a form-encoded body's (3.4.1.3.1); JSON bodies are not signed."""
    pairs = parse_qsl(request.url.query.decode("ascii"), keep_blank_values=True)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == FORM_CONTENT_TYPE and request.content:
        pairs += parse_qsl(request.content.decode("utf-8"), keep_blank_values=True)
    return pairs


class TokenAuth(httpx.Auth):
    """Sign each request with OAuth 1.0a HMAC-SHA256 TBA credentials (`Authorization: OAuth realm=...`)."""

    requires_request_body = True  # a form-encoded body's parameters are part of the signature

    def __init__(
        self,
        realm: str,
        consumer_key: str,
        consumer_secret: str,
        token: str,
        token_secret: str,
        *,
        clock: Callable[[], float] = time.time,
        nonce: Callable[[], str] = lambda: secrets.token_hex(16),
    ) -> None:
        self.realm = realm
        self._consumer_key, self._consumer_secret = consumer_key, consumer_secret
        self._token, self._token_secret = token, token_secret
        self._clock, self._nonce = clock, nonce

    def __repr__(self) -> str:
        return f"TokenAuth(realm={self.realm!r}, signature_method={SIGNATURE_METHOD!r})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self.header(request)
        yield request

    def protocol_parameters(self) -> dict[str, str]:
        """The `oauth_*` parameters of one signature: a new nonce and the current time."""
        return {
            "oauth_consumer_key": self._consumer_key,
            "oauth_token": self._token,
            "oauth_signature_method": SIGNATURE_METHOD,
            "oauth_timestamp": str(int(self._clock())),
            "oauth_nonce": self._nonce(),
            "oauth_version": "1.0",
        }

    def header(self, request: httpx.Request) -> str:
        """The `Authorization` header value that signs `request` as it stands now."""
        oauth = self.protocol_parameters()
        base = signature_base_string(
            request.method, request.url, [*request_parameters(request), *oauth.items()]
        )
        oauth["oauth_signature"] = hmac_sha256(base, self._consumer_secret, self._token_secret)
        fields = [f'realm="{encode(self.realm)}"', *(f'{k}="{encode(v)}"' for k, v in oauth.items())]
        return "OAuth " + ", ".join(fields)
