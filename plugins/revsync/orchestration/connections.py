"""Airflow Connections -> a source's base URL and credentials.

A connection `<source>_default` (or env `AIRFLOW_CONN_<SOURCE>_DEFAULT`, JSON or URI form) holds:
`host` the API base URL (with scheme, or the scheme in `schema`), `port` optional, `password` the
source's main secret, `login` its user-like field where it has one, and `extra` any other credential
fields (NetSuite's account and TBA keys) plus `lookback_seconds`. Pointing `host` at the real vendor is
all it takes to go live.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

SECRET_FIELD = {
    "stripe": "api_key",
    "hubspot": "token",
    "zendesk": "token",
    "netsuite": "token_secret",
    "chargebee": "api_key",
    "freshdesk": "api_key",
}
LOGIN_FIELD = {"zendesk": "email", "netsuite": "token_id"}
TUNING = ("lookback_seconds",)


@dataclass(frozen=True)
class SourceConfig:
    base_url: str
    credentials: dict[str, str]
    lookback_s: int | None = None

    def __repr__(self) -> str:  # never print credentials
        return f"SourceConfig(base_url={self.base_url!r}, credentials=<{len(self.credentials)} fields>)"


def conn_id(source: str) -> str:
    return f"{source}_default"


def source_config(source: str, conn: Any) -> SourceConfig:
    """Read an Airflow `Connection` (anything with host/port/schema/login/password/extra_dejson)."""
    host = (conn.host or "").rstrip("/")
    if not host:
        raise ValueError(
            f"connection {conn_id(source)!r} has no host: set it to the API base URL, "
            "e.g. https://api.stripe.com or http://127.0.0.1:12111"
        )
    if "://" not in host:
        host = f"{conn.schema or 'https'}://{host}"
    if conn.port and host.count(":") < 2:
        host = f"{host}:{conn.port}"
    extra = dict(conn.extra_dejson or {})
    lookback = extra.pop("lookback_seconds", None)
    credentials = {k: str(v) for k, v in extra.items() if k not in TUNING}
    if conn.password:
        credentials[SECRET_FIELD.get(source, "api_key")] = conn.password
    if conn.login and source in LOGIN_FIELD:
        credentials[LOGIN_FIELD[source]] = conn.login
    return SourceConfig(host, credentials, None if lookback is None else int(lookback))


def connection_json(source: str, base_url: str, credentials: dict[str, str], **extra: Any) -> str:
    """The `AIRFLOW_CONN_<SOURCE>_DEFAULT` value (Airflow's JSON form) for these credentials."""
    creds = dict(credentials)
    secret = creds.pop(SECRET_FIELD.get(source, "api_key"), None)
    login = creds.pop(LOGIN_FIELD[source], None) if source in LOGIN_FIELD else None
    body = {"conn_type": "http", "host": base_url, "extra": {**creds, **extra}}
    if secret is not None:
        body["password"] = secret
    if login is not None:
        body["login"] = login
    return json.dumps(body)


def sandbox_environment(endpoints: dict, **extra: Any) -> dict[str, str]:
    """`AIRFLOW_CONN_*` variables pointing every connection at a running sandbox (its endpoints.json)."""
    return {
        f"AIRFLOW_CONN_{conn_id(vendor).upper()}": connection_json(
            vendor, info["base_url"], info["credentials"], **extra
        )
        for vendor, info in endpoints["vendors"].items()
    }
