"""OAuth 1.0a HMAC-SHA256 signing (NetSuite TBA) against RFC 5849's example and oauthlib's reference code.

The signer is revsync's own (hashlib/hmac); oauthlib only checks it here, the way the sandbox's NetSuite
server does when it verifies a request.
"""

from __future__ import annotations

from types import SimpleNamespace

import httpx
import pytest
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA256, Client
from oauthlib.oauth1.rfc5849 import signature as reference
from oauthlib.oauth1.rfc5849 import utils as oauth_utils

from revsync.connectors import netsuite
from revsync.connectors.oauth1 import (
    TokenAuth,
    base_string_uri,
    hmac_sha256,
    request_parameters,
    signature_base_string,
)

# RFC 5849 section 3.4.1.1: the example request and the signature base string the RFC derives from it.
RFC_URL = "http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b"
RFC_BODY = b"c2&a3=2+q"
RFC_OAUTH = {
    "oauth_consumer_key": "9djdj82h48djs9d2",
    "oauth_token": "kkk9d7dh3k39sjv7",
    "oauth_signature_method": "HMAC-SHA1",
    "oauth_timestamp": "137131201",
    "oauth_nonce": "7d8f3e4a",
}
RFC_BASE_STRING = (
    "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D%25253D%26"
    "c%2540%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26"
    "oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7"
)
CONSUMER_SECRET, TOKEN_SECRET = "j49sk3j29djd", "dh893hdasih9"
TBA = {
    "account": "1234567_SB1",
    "consumer_key": "ck-" + "a" * 29,
    "consumer_secret": "cs-secret-do-not-leak",
    "token_id": "tid-" + "b" * 28,
    "token_secret": "ts-secret-do-not-leak",
}
SUITEQL = "https://1234567-sb1.suitetalk.api.netsuite.com/services/rest/query/v1/suiteql"


def _signed(auth: TokenAuth, request: httpx.Request) -> httpx.Request:
    return next(auth.auth_flow(request))


def _params(header: str) -> dict[str, str]:
    return {k: oauth_utils.unescape(v) for k, v in oauth_utils.parse_authorization_header(header)}


def test_base_string_matches_the_rfc_5849_example():
    request = httpx.Request(
        "POST", RFC_URL, content=RFC_BODY, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    pairs = [*request_parameters(request), *RFC_OAUTH.items()]
    assert signature_base_string("post", request.url, pairs) == RFC_BASE_STRING


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTP://Example.COM:80/r%20v/X?id=123", "http://example.com/r%20v/X"),
        ("https://www.example.net:8080/?q=1", "https://www.example.net:8080/"),
        ("https://Example.com:443/services/rest", "https://example.com/services/rest"),
        (
            "http://127.0.0.1:8004/services/rest/query/v1/suiteql",
            "http://127.0.0.1:8004/services/rest/query/v1/suiteql",
        ),
    ],
)
def test_base_string_uri_lowercases_and_drops_default_ports(url, expected):
    assert base_string_uri(httpx.URL(url)) == expected
    assert base_string_uri(httpx.URL(url)) == reference.base_string_uri(url)


def test_hmac_sha256_matches_oauthlib():
    secrets = SimpleNamespace(client_secret=CONSUMER_SECRET, resource_owner_secret=TOKEN_SECRET)
    expected = reference.sign_hmac_sha256_with_client(RFC_BASE_STRING, secrets)
    assert hmac_sha256(RFC_BASE_STRING, CONSUMER_SECRET, TOKEN_SECRET) == expected


def test_header_matches_oauthlib_client_for_a_suiteql_page():
    """Same nonce and timestamp: revsync's header carries the signature oauthlib's client computes."""
    auth = TokenAuth(
        TBA["account"],
        TBA["consumer_key"],
        TBA["consumer_secret"],
        TBA["token_id"],
        TBA["token_secret"],
        clock=lambda: 1_700_000_000.7,
        nonce=lambda: "fixednonce123",
    )
    request = httpx.Request(
        "POST", SUITEQL, params={"limit": 1000, "offset": 2000}, json={"q": "SELECT * FROM customer"}
    )
    ours = _params(_signed(auth, request).headers["Authorization"])
    client = Client(
        TBA["consumer_key"],
        client_secret=TBA["consumer_secret"],
        resource_owner_key=TBA["token_id"],
        resource_owner_secret=TBA["token_secret"],
        signature_method=SIGNATURE_HMAC_SHA256,
        realm=TBA["account"],
        nonce="fixednonce123",
        timestamp="1700000000",
    )
    _, headers, _ = client.sign(f"{SUITEQL}?limit=1000&offset=2000", http_method="POST")
    theirs = _params(headers["Authorization"])
    assert ours == theirs
    assert ours["realm"] == "1234567_SB1" and ours["oauth_signature_method"] == "HMAC-SHA256"


def test_query_parameters_are_signed():
    """Changing only `offset` changes the signature (a server would reject a replayed header)."""
    auth = TokenAuth("ACCT", "ck", "cs", "tid", "ts", clock=lambda: 1_700_000_000, nonce=lambda: "n")
    first = _signed(auth, httpx.Request("POST", SUITEQL, params={"limit": 1000, "offset": 0}))
    second = _signed(auth, httpx.Request("POST", SUITEQL, params={"limit": 1000, "offset": 1000}))
    assert (
        _params(first.headers["Authorization"])["oauth_signature"]
        != _params(second.headers["Authorization"])["oauth_signature"]
    )


def test_every_signature_gets_a_fresh_nonce():
    auth = TokenAuth(
        *(TBA[k] for k in ("account", "consumer_key", "consumer_secret", "token_id", "token_secret"))
    )
    headers = [
        _params(_signed(auth, httpx.Request("GET", SUITEQL)).headers["Authorization"]) for _ in range(50)
    ]
    assert len({h["oauth_nonce"] for h in headers}) == 50
    assert len({h["oauth_signature"] for h in headers}) == 50


def test_secrets_stay_out_of_repr_and_header():
    auth = netsuite.auth(TBA)
    assert isinstance(auth, TokenAuth)
    header = _signed(auth, httpx.Request("GET", SUITEQL)).headers["Authorization"]
    for secret in (TBA["consumer_secret"], TBA["token_secret"]):
        assert secret not in repr(auth) and secret not in header
    assert TBA["account"] in repr(auth)


def test_netsuite_auth_prefers_tba_and_falls_back_to_the_bearer():
    assert isinstance(netsuite.auth({**TBA, "bearer": "ns-bearer"}), TokenAuth)
    partial = {k: v for k, v in TBA.items() if k != "token_secret"}
    assert netsuite.auth({**partial, "bearer": "ns-bearer"}) == {"Authorization": "Bearer ns-bearer"}
    with pytest.raises(ValueError, match="token_secret") as err:
        netsuite.auth(partial)
    assert TBA["consumer_secret"] not in str(err.value)
