"""Parent/child streams (child requests per parent record) and the TimeWindow strategy against a small
Stripe-like billing-meter server on loopback: real sockets and the real paging engine and landing."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import duckdb
import pytest

from revsync.connectors import stripe
from revsync.connectors.base import Connector, Parent, Stream, StripeCursor, run_stream
from revsync.connectors.http import Fetcher
from revsync.connectors.incremental import TimeWindow
from revsync.connectors.load import Window, extract_stream, plan_stream

DAY = 86_400
T0 = 1_700_006_400  # a UTC midnight


class Billing:
    """Two meters (one page each: limit 1), subscriptions (a customer twice, one long ended, one
    without a customer) and per meter x customer daily usage that a test may grow."""

    def __init__(self) -> None:
        self.meters = [{"id": "mtr_api calls"}, {"id": "mtr_seats"}]
        self.subscriptions = [
            {"id": "sub_1", "customer": "cus_a", "ended_at": None},
            {"id": "sub_2", "customer": "cus_b", "ended_at": T0 - 10 * DAY},  # ended before the window
            {"id": "sub_3", "customer": "cus_a", "ended_at": None},  # cus_a again: one request
            {"id": "sub_4", "customer": "cus_c", "ended_at": T0 + DAY},
            {"id": "sub_5", "customer": None, "ended_at": None},
        ]
        self.usage = {  # (meter, customer, day start) -> value
            ("mtr_api calls", "cus_a", T0): 5.0,
            ("mtr_api calls", "cus_a", T0 + DAY): 7.0,
            ("mtr_seats", "cus_c", T0): 2.0,
            ("mtr_seats", "cus_b", T0 - 20 * DAY): 9.0,
        }
        self.requests: list[tuple[str, dict]] = []

    def answer(self, path: str, query: dict) -> dict:
        self.requests.append((path, query))
        if path == "/v1/billing/meters":
            return self._page(self.meters, query, limit=1)
        if path == "/v1/subscriptions":
            return self._page(self.subscriptions, query)
        meter = path.split("/")[4].replace("%20", " ")
        start, end = int(query["start_time"]), int(query["end_time"])
        rows = [
            {
                "id": f"mrs_{meter}|{customer}|{day}",
                "object": "billing.meter_event_summary",
                "aggregated_value": value,
                "start_time": day,
                "end_time": day + DAY,
                "meter": meter,
            }
            for (m, customer, day), value in sorted(self.usage.items(), key=lambda kv: kv[0][2])
            if m == meter and customer == query["customer"] and start <= day < end
        ]
        return self._page(rows, query)

    @staticmethod
    def _page(rows: list[dict], query: dict, limit: int | None = None) -> dict:
        limit = limit or int(query.get("limit", 10))
        after = query.get("starting_after")
        if after:
            rows = rows[[r["id"] for r in rows].index(after) + 1 :]
        return {"object": "list", "data": rows[:limit], "has_more": len(rows) > limit}


@pytest.fixture
def billing():
    state = Billing()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            url = urlparse(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            body = json.dumps(state.answer(url.path, query)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def _usage(end: int = T0 + 2 * DAY) -> Stream:
    """The Stripe connector's usage stream, with its end of time pinned."""
    return replace(stripe.USAGE, params={**stripe.USAGE.params, "end_time": lambda: end})


def _summaries(billing) -> list[tuple[str, dict]]:
    return [(p, q) for p, q in billing.requests if p.endswith("/event_summaries")]


def test_children_are_requested_per_distinct_kept_parent_and_tagged_with_it(billing):
    with Fetcher({}) as fetcher:
        pages = list(run_stream(fetcher, billing.base_url, _usage()))
    records = [r for page in pages for r in page.records]
    # full load (start_time 0): every customer with a subscription, once per meter (cus_a twice -> once)
    asked = sorted((p.split("/")[4], q["customer"]) for p, q in _summaries(billing))
    assert asked == sorted(
        (m, c) for m in ("mtr_api%20calls", "mtr_seats") for c in ("cus_a", "cus_b", "cus_c")
    )
    assert all(
        q["value_grouping_window"] == "day" and q["start_time"] == "0" and q["end_time"] == str(T0 + 2 * DAY)
        for _, q in _summaries(billing)
    )
    # both meter pages were read (limit 1, has_more), and every summary names its customer
    assert sum(1 for p, _ in billing.requests if p == "/v1/billing/meters") == 2
    got = {(r["meter"], r["customer"], r["start_time"]): r["aggregated_value"] for r in records}
    assert got == billing.usage
    assert all(page.source_url.startswith(billing.base_url + "/v1/billing/meters/") for page in pages)


def test_a_parent_stream_without_records_makes_no_child_request(billing):
    billing.subscriptions = []
    with Fetcher({}) as fetcher:
        assert list(run_stream(fetcher, billing.base_url, _usage())) == []
    assert _summaries(billing) == []


def test_parent_bindings_fill_path_and_params_and_never_overwrite_a_child_field(billing):
    meters = Stream("meters", "/v1/billing/meters", "id", StripeCursor(limit=1), "data")
    child = Stream(
        "usage",
        "/v1/billing/meters/{meter}/event_summaries",
        "id",
        StripeCursor(),
        "data",
        params={"customer": "{who}", "start_time": 0, "end_time": T0 + 2 * DAY},
        parents=(
            Parent(meters, {"meter": "id"}, keep=lambda m, params: "seats" in m["id"]),
            Parent(
                Stream("subscriptions", "/v1/subscriptions", "id", StripeCursor(), "data"),
                {"who": "customer", "start_time": "id"},  # a parent field the child already has
            ),
        ),
    )
    with Fetcher({}) as fetcher:
        records = [r for page in run_stream(fetcher, billing.base_url, child) for r in page.records]
    assert {q["customer"] for _, q in _summaries(billing)} == {"cus_a", "cus_b", "cus_c"}
    assert {p for p, _ in _summaries(billing)} == {"/v1/billing/meters/mtr_seats/event_summaries"}
    assert {(r["who"], r["start_time"]) for r in records} == {("cus_c", T0), ("cus_b", T0 - 20 * DAY)}


def test_time_window_asks_for_whole_days_and_the_cursor_becomes_the_read_time():
    stream = _usage()
    forced = Window(lookback_s=600, force=True)  # read 10 minutes ago: within the hourly refresh interval
    plan = plan_stream(stream, stored=T0 + DAY + 300, window=forced, now=T0 + DAY + 900)
    assert plan.mode == "incremental" and plan.since == T0 + DAY - 300
    changes = TimeWindow().changes(stream, plan.since, T0 + DAY + 900)
    assert (changes.params["start_time"], changes.params["end_time"]) == (T0, T0 + 2 * DAY)
    assert plan.cursor_floor == T0 + DAY + 900  # no record change times: read through `now`
    bounded = plan_stream(
        stream, T0 + DAY + 300, Window(until=T0 + DAY + 600, force=True), now=T0 + DAY + 900
    )
    assert bounded.cursor_floor == T0 + DAY + 600 and bounded.stream.params["end_time"] == T0 + 2 * DAY


def test_incremental_runs_read_only_days_since_the_cursor_and_a_growing_day_lands_a_new_version(
    billing, tmp_path
):
    connector = Connector("stripe", (_usage(),), stripe.auth)
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    with Fetcher({}) as fetcher:
        first = extract_stream(con, connector, connector.streams[0], fetcher, billing.base_url, "b1")
        assert (first.mode, first.result.rows) == ("full", len(billing.usage))
        # the next run: only customers whose subscription lived in the window, only days since the cursor
        con.execute(
            "update revsync_state.cursors set cursor = ? where stream = 'usage'", [str(T0 + DAY + 60)]
        )
        billing.requests.clear()
        billing.usage[("mtr_api calls", "cus_a", T0 + DAY)] = 11.0  # the day grows
        billing.usage[("mtr_seats", "cus_a", T0 + DAY)] = 1.0  # a new day
        window = Window(until=T0 + DAY + 3600, force=True)
        second = extract_stream(con, connector, connector.streams[0], fetcher, billing.base_url, "b2", window)
    assert second.mode == "incremental"
    assert {q["start_time"] for _, q in _summaries(billing)} == {str(T0)}  # whole days from cursor - lookback
    assert {q["customer"] for _, q in _summaries(billing)} == {"cus_a", "cus_c"}  # cus_b's ended long before
    assert (second.result.rows, second.result.unchanged) == (2, 2)  # cus_a T0, cus_c T0 unchanged
    rows = con.execute(
        "select _pk, count(*), max_by((record->>'aggregated_value')::double, _loaded_at)"
        " from raw_stripe.usage group by _pk"
    ).fetchall()
    versions = {pk: (n, value) for pk, n, value in rows}
    assert versions[f"mrs_mtr_api calls|cus_a|{T0 + DAY}"] == (2, 11.0)
    assert versions[f"mrs_mtr_seats|cus_a|{T0 + DAY}"] == (1, 1.0)
    assert con.execute("select cursor from revsync_state.cursors").fetchone()[0] == str(T0 + DAY + 3600)


def test_a_stream_with_a_refresh_interval_is_skipped_until_it_is_due():

    stream = _usage()
    assert stream.refresh_every_s == 3600  # the Stripe usage stream: hourly
    read_to = T0 + DAY
    assert plan_stream(stream, read_to, Window(), now=read_to + 3599).mode == "skipped"
    assert plan_stream(stream, read_to, Window(), now=read_to + 3600).mode == "incremental"
    for window in (Window(force=True), Window(full_refresh=True), Window(start_cursor=T0)):
        assert plan_stream(stream, read_to, window, now=read_to + 60).mode != "skipped", window
    assert plan_stream(stream, None, Window(), now=read_to).mode == "full"  # never read: always due
