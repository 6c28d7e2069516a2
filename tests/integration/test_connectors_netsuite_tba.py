"""NetSuite over OAuth 1.0 TBA (HMAC-SHA256) against the sandbox, which verifies every signature.

The credentials handed to the connector have no `bearer`, so the sandbox's only way to let a request in
is a valid TBA signature (its `authenticate` checks realm, consumer key, token, HMAC-SHA256 signature
over method, URL and all query parameters, timestamp and single-use nonce).
"""

from __future__ import annotations

import duckdb
import pytest

from revsync.connectors import netsuite
from revsync.connectors.http import SourceError
from revsync.connectors.load import load_source
from revsync.connectors.oauth1 import TokenAuth
from revsync.connectors.registry import CONNECTORS
from revsync.warehouse.landing import raw_table
from sandbox.world.streams import tables_of

pytestmark = pytest.mark.integration

TBA_KEYS = ("account", "consumer_key", "consumer_secret", "token_id", "token_secret")
WORLD_TABLES = tables_of("netsuite")  # stream -> the world table it must match row for row


def _tba_only(sandbox) -> dict[str, str]:
    creds = sandbox.creds("netsuite")
    assert creds.get("bearer") and all(creds.get(k) for k in TBA_KEYS), sorted(creds)
    return {k: creds[k] for k in TBA_KEYS}


def test_full_load_signed_with_tba_lands_every_row(sandbox, tmp_path):
    creds = _tba_only(sandbox)
    assert isinstance(netsuite.auth(creds), TokenAuth)
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    results = load_source(con, CONNECTORS["netsuite"], sandbox.base_url("netsuite"), creds, "b1")
    expected = sandbox.admin("counts")
    sql = "select count(*), count(distinct _pk) from {} where _batch_id = 'b1'"
    landed = {s: con.execute(sql.format(raw_table("netsuite", s))).fetchone() for s in WORLD_TABLES}
    assert landed == {stream: (expected[table], expected[table]) for stream, table in WORLD_TABLES.items()}
    assert all(results[stream].rows == expected[table] for stream, table in WORLD_TABLES.items())
    assert expected["netsuite_customer_payments"] > 1000  # several SuiteQL pages: offsets were signed


def test_wrong_token_secret_is_a_401_without_the_secret(sandbox, tmp_path):
    creds = _tba_only(sandbox)
    wrong = "wrong-" + creds["token_secret"][::-1]
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    with pytest.raises(SourceError) as err:
        load_source(
            con,
            CONNECTORS["netsuite"],
            sandbox.base_url("netsuite"),
            {**creds, "token_secret": wrong},
            "b1",
            ("customer",),
        )
    message = str(err.value)
    assert err.value.last_status == 401 and "401" in message
    for secret in (wrong, creds["token_secret"], creds["consumer_secret"]):
        assert secret not in message and secret not in repr(err.value)
