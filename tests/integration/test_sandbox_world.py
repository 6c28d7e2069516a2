"""What the sandbox serves is the generated world: every list endpoint pages to the last page and yields
exactly the world's rows, every ground-truth anchor is served by its vendor, and the planted absences
are really absent from the vendor APIs. Plain httpx with each vendor's own auth, over loopback.
"""

from __future__ import annotations

import json
import re

import duckdb
import httpx
import orjson
import pytest
from typer.testing import CliRunner

from sandbox.cli import app as sandbox_cli
from sandbox.server.runner import client_headers
from sandbox.world.truth import counts_by_type, read_truth

pytestmark = pytest.mark.integration

STRIPE_LISTS = {  # path -> (table, extra params)
    "customers": ("stripe_customers", {}),
    "subscriptions": ("stripe_subscriptions", {"status": "all"}),
    "invoices": ("stripe_invoices", {}),
    "charges": ("stripe_charges", {}),
    "credit_notes": ("stripe_credit_notes", {}),
    "products": ("stripe_products", {}),
    "prices": ("stripe_prices", {}),
    "events": ("stripe_events", {}),
}
HUBSPOT_LISTS = {"companies": "hubspot_companies", "contacts": "hubspot_contacts", "deals": "hubspot_deals"}
ZENDESK_LISTS = {
    "organizations": "zendesk_organizations",
    "users": "zendesk_users",
    "tickets": "zendesk_tickets",
}
NETSUITE_LISTS = {
    "customer": "netsuite_customers",
    "salesOrder": "netsuite_sales_orders",
    "invoice": "netsuite_invoices",
    "customerPayment": "netsuite_customer_payments",
    "creditMemo": "netsuite_credit_memos",
    "subsidiary": "netsuite_subsidiaries",
}
# mismatch type -> how its anchor is fetched from its vendor
ANCHOR_PATH = {
    "customer_missing_in_erp": ("stripe", "/v1/customers/{}"),
    "subscription_missing_in_erp": ("stripe", "/v1/subscriptions/{}"),
    "invoice_missing_in_erp": ("stripe", "/v1/invoices/{}"),
    "invoice_amount_mismatch": ("stripe", "/v1/invoices/{}"),
    "invoice_currency_mismatch": ("stripe", "/v1/invoices/{}"),
    "payment_status_mismatch": ("stripe", "/v1/invoices/{}"),
    "credit_note_missing_in_erp": ("stripe", "/v1/credit_notes/{}"),
    "duplicate_erp_customer": ("netsuite", "/services/rest/record/v1/customer/{}"),
    "erp_contract_without_active_subscription": ("netsuite", "/services/rest/record/v1/salesOrder/{}"),
    "entitlement_tier_mismatch": ("zendesk", "/api/v2/organizations/{}.json"),
    "entitlement_on_delinquent_account": ("zendesk", "/api/v2/organizations/{}.json"),
    "entitlement_after_cancellation": ("zendesk", "/api/v2/organizations/{}.json"),
    "closed_won_without_subscription": ("hubspot", "/crm/v3/objects/deals/{}"),
    "crm_arr_mismatch": ("hubspot", "/crm/v3/objects/companies/{}"),
}


def _headers(sandbox, vendor: str) -> dict[str, str]:
    return client_headers(vendor, sandbox.creds(vendor))


@pytest.fixture(scope="module")
def clients(sandbox):
    made = {
        v: httpx.Client(base_url=sandbox.base_url(v), headers=_headers(sandbox, v), timeout=60)
        for v in ("stripe", "hubspot", "zendesk", "netsuite")
    }
    yield made
    for client in made.values():
        client.close()


@pytest.fixture(scope="module")
def pristine(small_world):
    """The generated world file (the served copy belongs to the server process)."""
    con = duckdb.connect(str(small_world / "world.duckdb"), read_only=True)
    yield con
    con.close()


def _get(client: httpx.Client, path: str, **params) -> dict:
    response = client.get(path, params=params)
    assert response.status_code == 200, (path, params, response.text[:300])
    return orjson.loads(response.content)


def _stripe_all(client, path: str, extra: dict) -> list[str]:
    ids, after = [], None
    while True:
        page = _get(client, f"/v1/{path}", limit=100, **extra, **({"starting_after": after} if after else {}))
        ids += [d["id"] for d in page["data"]]
        if not page["has_more"]:
            return ids
        after = page["data"][-1]["id"]


def _hubspot_all(client, path: str) -> list[str]:
    ids, after = [], None
    while True:
        page = _get(client, f"/crm/v3/objects/{path}", limit=100, **({"after": after} if after else {}))
        ids += [r["id"] for r in page["results"]]
        if "paging" not in page:
            return ids
        after = page["paging"]["next"]["after"]


def _zendesk_all(client, path: str) -> list[int]:
    ids, params = [], {"page[size]": 100}
    while True:
        page = _get(client, f"/api/v2/{path}.json", **params)
        ids += [r["id"] for r in page[path]]
        if not page["meta"]["has_more"]:
            return ids
        params = {"page[size]": 100, "page[after]": page["meta"]["after_cursor"]}


def _netsuite_all(client, record: str) -> tuple[list[str], int]:
    ids, offset = [], 0
    while True:
        page = _get(client, f"/services/rest/record/v1/{record}", limit=1000, offset=offset)
        ids += [item["id"] for item in page["items"]]
        if not page["hasMore"]:
            return ids, page["totalResults"]
        offset += 1000


def _suiteql_all(client, q: str) -> list[dict]:
    rows, offset = [], 0
    while True:
        response = client.post(
            "/services/rest/query/v1/suiteql",
            params={"limit": 1000, "offset": offset},
            json={"q": q},
            headers={"Prefer": "transient"},
        )
        assert response.status_code == 200, response.text[:300]
        page = response.json()
        rows += page["items"]
        if not page["hasMore"]:
            return rows
        offset += 1000


def _pristine_ids(pristine, table: str) -> set[str]:
    return {str(r[0]) for r in pristine.execute(f"select id from {table}").fetchall()}


# -- every list, to the last page -------------------------------------------------------------------
@pytest.fixture(scope="module")
def served(sandbox, clients) -> tuple[dict[str, list], dict[str, int]]:
    """Every list endpoint paged to its last page: ids per world table, and the world's row counts."""
    counts = sandbox.admin("counts")
    ids: dict[str, list] = {}
    for path, (table, extra) in STRIPE_LISTS.items():
        ids[table] = _stripe_all(clients["stripe"], path, extra)
    for path, table in HUBSPOT_LISTS.items():
        ids[table] = _hubspot_all(clients["hubspot"], path)
    for path, table in ZENDESK_LISTS.items():
        ids[table] = _zendesk_all(clients["zendesk"], path)
    for record, table in NETSUITE_LISTS.items():
        ids[table], total = _netsuite_all(clients["netsuite"], record)
        assert total == counts[table], record
    assert sandbox.admin("counts") == counts, "the world changed while it was being paged"
    return ids, counts


def test_every_list_endpoint_pages_to_exactly_the_worlds_rows(served, pristine):
    ids_by_table, counts = served
    for table, ids in ids_by_table.items():
        assert len(ids) == counts[table], f"{table}: served {len(ids)}, world has {counts[table]}"
        assert len(set(ids)) == len(ids), f"{table}: a record was served twice"
        # other tests may have written to the served world, never removed from it
        assert _pristine_ids(pristine, table) <= {str(i) for i in ids}, table
    big = {t for t, n in counts.items() if t in ids_by_table and n > 1000}
    assert {"stripe_invoices", "hubspot_contacts", "zendesk_tickets", "netsuite_invoices"} <= big


def test_suiteql_pages_every_transaction(sandbox, clients):
    counts = sandbox.admin("counts")
    rows = _suiteql_all(clients["netsuite"], "select id, type from transaction order by id")
    by_type: dict[str, int] = {}
    for row in rows:
        by_type[row["type"]] = by_type.get(row["type"], 0) + 1
    assert by_type == {
        "SalesOrd": counts["netsuite_sales_orders"],
        "CustInvc": counts["netsuite_invoices"],
        "CustPymt": counts["netsuite_customer_payments"],
        "CustCred": counts["netsuite_credit_memos"],
    }
    assert len({r["id"] for r in rows}) == len(rows)


# -- the ground truth is served -----------------------------------------------------------------------
ANCHOR_TABLE = {
    "customer_missing_in_erp": "stripe_customers",
    "subscription_missing_in_erp": "stripe_subscriptions",
    "invoice_missing_in_erp": "stripe_invoices",
    "invoice_amount_mismatch": "stripe_invoices",
    "invoice_currency_mismatch": "stripe_invoices",
    "payment_status_mismatch": "stripe_invoices",
    "credit_note_missing_in_erp": "stripe_credit_notes",
    "duplicate_erp_customer": "netsuite_customers",
    "erp_contract_without_active_subscription": "netsuite_sales_orders",
    "entitlement_tier_mismatch": "zendesk_organizations",
    "entitlement_on_delinquent_account": "zendesk_organizations",
    "entitlement_after_cancellation": "zendesk_organizations",
    "closed_won_without_subscription": "hubspot_deals",
    "crm_arr_mismatch": "hubspot_companies",
}
SAMPLE = 5  # anchors per type also fetched one by one


def _truth_by_type(sandbox) -> dict[str, list[dict]]:
    by_type: dict[str, list[dict]] = {}
    for entry in read_truth(sandbox.world_dir / "ground_truth.jsonl"):
        by_type.setdefault(entry["mismatch_type"], []).append(entry)
    return by_type


def test_every_truth_anchor_is_served_by_its_vendor(sandbox, clients, served):
    ids_by_table, _ = served
    by_type = _truth_by_type(sandbox)
    assert set(by_type) == set(ANCHOR_PATH)
    for kind, entries in by_type.items():
        vendor, template = ANCHOR_PATH[kind]
        listed = {str(i) for i in ids_by_table[ANCHOR_TABLE[kind]]}
        for entry in entries:
            assert entry["anchor_system"] == vendor
            assert entry["anchor_id"] in listed, entry  # in its vendor's list
        for entry in entries[:SAMPLE]:  # and retrievable by id
            doc = _get(clients[vendor], template.format(entry["anchor_id"]))
            assert str(doc.get("organization", doc)["id"]) == entry["anchor_id"], entry


def _eid_absent(clients, record: str, stripe_id: str) -> None:
    """The record service knows no `record` with external id `stripe_id`, in either case."""
    for key in (stripe_id, stripe_id.upper()):
        response = clients["netsuite"].get(f"/services/rest/record/v1/{record}/eid:{key}")
        assert response.status_code == 404, (record, key, response.text[:200])
        assert response.json()["o:errorDetails"][0]["o:errorCode"] == "NONEXISTENT_ID"


def _external_ids(clients, where: str) -> set[str]:
    rows = _suiteql_all(clients["netsuite"], f"select externalid from {where}")
    return {r["externalid"].upper() for r in rows if "externalid" in r}


def test_planted_absences_are_absent_from_netsuite(sandbox, clients):
    by_type = {k: [e["anchor_id"] for e in v] for k, v in _truth_by_type(sandbox).items()}
    absent = {
        "invoice_missing_in_erp": ("invoice", "transaction where type = 'CustInvc'"),
        "subscription_missing_in_erp": ("salesOrder", "transaction where type = 'SalesOrd'"),
        "customer_missing_in_erp": ("customer", "customer"),
        "credit_note_missing_in_erp": ("creditMemo", "transaction where type = 'CustCred'"),
    }
    for kind, (record, where) in absent.items():
        known = _external_ids(clients, where)  # every external id NetSuite has, via SuiteQL
        assert len(known) > 0
        assert not {a.upper() for a in by_type[kind]} & known, kind
        for anchor in by_type[kind][:SAMPLE]:
            _eid_absent(clients, record, anchor)
    # a planted amount mismatch is present on both sides, with different totals after normalisation
    for anchor in by_type["invoice_amount_mismatch"][:SAMPLE]:
        stripe = _get(clients["stripe"], f"/v1/invoices/{anchor}")
        netsuite = _get(clients["netsuite"], f"/services/rest/record/v1/invoice/eid:{anchor}")
        exponent = 0 if stripe["currency"] == "jpy" else 2
        assert netsuite["total"] != pytest.approx(stripe["total"] / 10**exponent), anchor


def test_duplicate_erp_customers_are_served_with_one_domain(sandbox, clients):
    groups: dict[str, list[str]] = {}
    for entry in read_truth(sandbox.world_dir / "ground_truth.jsonl"):
        if entry["mismatch_type"] == "duplicate_erp_customer":
            groups.setdefault(entry["details"]["group"], []).append(entry["anchor_id"])
    assert groups
    for members in list(groups.values())[:10]:
        emails = {
            _get(clients["netsuite"], f"/services/rest/record/v1/customer/{m}")["email"] for m in members
        }
        assert len(members) >= 2 and len({e.split("@")[1] for e in emails}) == 1, emails


# -- `revsync sandbox truth` -----------------------------------------------------------------------
def test_truth_command_matches_the_truth_file(small_world):
    result = CliRunner().invoke(sandbox_cli, ["truth", str(small_world)])
    assert result.exit_code == 0, result.output
    entries = read_truth(small_world / "ground_truth.jsonl")
    every = counts_by_type(entries)
    printed = {}
    for line in result.output.splitlines()[1:]:
        match = re.fullmatch(r"(\w+)\s+(\d+)\s+(\d+)", line.strip())
        assert match, line
        printed[match[1]] = int(match[2]) + int(match[3])
    total = printed.pop("total")
    assert printed == every
    assert total == len(entries) == sum(every.values()) > 0
    assert all(n > 0 for n in every.values()), every


def test_truth_command_reports_a_missing_world(tmp_path):
    result = CliRunner().invoke(sandbox_cli, ["truth", str(tmp_path)])
    assert result.exit_code == 2
    assert "no ground truth" in result.output


def test_truth_command_names_a_bad_line(tmp_path):
    (tmp_path / "ground_truth.jsonl").write_text(json.dumps({"mismatch_type": "x"}) + "\n{oops\n")
    result = CliRunner().invoke(sandbox_cli, ["truth", str(tmp_path)])
    assert result.exit_code == 2
    assert "ground_truth.jsonl:2" in result.output
