"""Declarative streams over one generic paging engine (after dlt's rest_api source).

A connector is a table of `Stream`s (name, path, primary key, cursor field, paginator, record path,
params, incremental strategy, parents); `run_stream` turns one stream into an iterator of `Page`s, each the
records of one response with the URL that served them and each record's cursor (its change time in
epoch seconds). Paginators know only their vendor's paging protocol; incremental strategies
(revsync.connectors.incremental) rewrite a stream into the vendor's "changed since" request; the
fetcher knows only HTTP and retries.

A child stream (one with `parents`) is requested once per parent record: each parent stream is read
in full, its records reduced to distinct bindings of named fields, and the child's path and string
params are formatted with each combination of bindings (`/v1/meters/{meter}/summaries?customer=
{customer}`); each child record gets the binding's fields it does not carry itself.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from revsync.connectors.http import Fetcher, SourceError

if TYPE_CHECKING:
    from revsync.connectors.incremental import Incremental

MALFORMED_PAGE_ATTEMPTS = 3


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    params: dict[str, Any] | None = None
    body: Any = None
    headers: dict[str, str] | None = None
    cursor: str | None = None  # the paging position this request asks for (for errors and state)

    @property
    def full_url(self) -> str:
        return str(httpx.URL(self.url, params=self.params)) if self.params else self.url


@dataclass(frozen=True)
class Page:
    records: list[dict]
    source_url: str
    cursors: list[int | None]  # each record's change time (epoch s); None when missing or unparseable

    @property
    def cursor_value(self) -> int | None:
        """The furthest cursor on the page."""
        return max((c for c in self.cursors if c is not None), default=None)


# Cursor parsers: a vendor's change-time field -> epoch seconds (ValueError/TypeError when unparseable).
def epoch_seconds(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError("a boolean is not a timestamp")
    return int(value)


def epoch_millis(value: Any) -> int:
    return epoch_seconds(value) // 1000


def iso_datetime(value: Any) -> int:
    """ISO 8601 with an offset or `Z` (naive values are rejected: their zone would be a guess)."""
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp without a zone: {value!r}")
    return int(parsed.timestamp())


def local_datetime(zone: tzinfo) -> Callable[[Any], int]:
    """`YYYY-MM-DD HH:MM:SS` wall-clock time in the account's zone (NetSuite SuiteQL)."""

    def parse(value: Any) -> int:
        return int(datetime.strptime(str(value), "%Y-%m-%d %H:%M:%S").replace(tzinfo=zone).timestamp())

    return parse


class Paginator:
    """How one vendor asks for the first page and derives the next request from a response."""

    def first(self, url: str, stream: Stream) -> Request:
        return Request("GET", url, dict(stream.params), cursor=None)

    def next(
        self, request: Request, body: Any, records: list[dict], headers: httpx.Headers
    ) -> Request | None:
        """The request for the page after `request`, or None when `body` was the last page."""
        raise NotImplementedError


@dataclass(frozen=True)
class StripeCursor(Paginator):
    """`limit` + `starting_after=<last id>` while `has_more`."""

    limit: int = 100

    def first(self, url: str, stream: Stream) -> Request:
        return Request("GET", url, {**stream.params, "limit": self.limit})

    def next(self, request, body, records, headers):
        if not body.get("has_more") or not records:
            return None
        last = str(records[-1].get("id"))
        return replace(request, params={**request.params, "starting_after": last}, cursor=last)


@dataclass(frozen=True)
class HubSpotAfter(Paginator):
    """`limit` + `after=<paging.next.after>` until `paging.next` is absent."""

    limit: int = 100

    def first(self, url: str, stream: Stream) -> Request:
        return Request("GET", url, {**stream.params, "limit": self.limit})

    def next(self, request, body, records, headers):
        after = ((body.get("paging") or {}).get("next") or {}).get("after")
        if after is None:
            return None
        return replace(request, params={**request.params, "after": after}, cursor=str(after))


@dataclass(frozen=True)
class ZendeskCursor(Paginator):
    """`page[size]`, then follow `links.next` verbatim while `meta.has_more`."""

    size: int = 100

    def first(self, url: str, stream: Stream) -> Request:
        return Request("GET", url, {**stream.params, "page[size]": self.size})

    def next(self, request, body, records, headers):
        meta, links = body.get("meta") or {}, body.get("links") or {}
        if not meta.get("has_more") or not links.get("next"):
            return None
        return Request("GET", links["next"], None, cursor=meta.get("after_cursor"))


@dataclass(frozen=True)
class SuiteQLOffset(Paginator):
    """SuiteQL `limit`/`offset` over a query ordered by id; past `max_results` restart at `id > last`.

    SuiteQL serves at most `max_results` rows of a query and says `hasMore: false` at that cap even
    when more rows match, so a window read to the cap restarts whatever `hasMore` says; a restart that
    finds nothing ends the stream.
    """

    limit: int = 1000
    max_results: int = 100_000

    def first(self, url: str, stream: Stream) -> Request:
        return self._request(url, stream.params, None, 0)

    def next(self, request, body, records, headers):
        if not records:
            return None
        offset = int(request.params["offset"]) + len(records)
        if offset >= self.max_results or (body.get("hasMore") and offset + self.limit > self.max_results):
            return self._request(request.url, request.body["_query"], str(records[-1]["id"]), 0)
        if not body.get("hasMore"):
            return None
        return replace(request, params={**request.params, "offset": offset})

    def _request(self, url: str, query: dict, after_id: str | None, offset: int) -> Request:
        conditions = [c for c in (query.get("where"), after_id and f"id > {int(after_id)}") if c]
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        q = f"SELECT {query.get('select', '*')} FROM {query['from']}{where} ORDER BY id"
        return Request(
            "POST",
            url,
            {"limit": self.limit, "offset": offset},
            body={"q": q, "_query": query},
            headers={"Prefer": "transient"},
            cursor=after_id,
        )


@dataclass(frozen=True)
class ZendeskExportCursor(Paginator):
    """Zendesk cursor-based incremental export: follow `after_url` until `end_of_stream`."""

    def next(self, request, body, records, headers):
        if body.get("end_of_stream") or not body.get("after_url"):
            return None
        return Request("GET", body["after_url"], None, cursor=body.get("after_cursor"))


@dataclass(frozen=True)
class ZendeskTimeExport(Paginator):
    """Zendesk time-based incremental export: follow `next_page` until `end_of_stream`."""

    def next(self, request, body, records, headers):
        if body.get("end_of_stream") or not body.get("next_page"):
            return None
        return Request("GET", body["next_page"], None, cursor=str(body.get("end_time")))


@dataclass(frozen=True)
class HubSpotSearchWindow(Paginator):
    """HubSpot CRM search on `property` >= since (< until), ascending; re-windows before the 10k cap.

    A search cannot page past `cap` results, so when the next `after` would reach it the search starts
    again at the last record's timestamp (GTE: records sharing it are fetched twice and land once).
    """

    property: str
    since_ms: int
    until_ms: int | None
    properties: tuple[str, ...]
    limit: int = 200
    cap: int = 10_000

    def first(self, url: str, stream: Stream) -> Request:
        return self._request(url, self.since_ms, 0)

    def next(self, request, body, records, headers):
        after = ((body.get("paging") or {}).get("next") or {}).get("after")
        if after is None or not records:
            return None
        if int(after) + self.limit <= self.cap:
            return replace(request, body={**request.body, "after": after}, cursor=str(after))
        last = dig(records[-1], f"properties.{self.property}")
        window_ms = epoch_millis_of(last)
        if window_ms <= request.body["_since_ms"]:
            raise SourceError(
                request.full_url,
                str(window_ms),
                200,
                f"more than {self.cap} records share {self.property} = {last}; cannot re-window",
            )
        return self._request(request.url, window_ms, 0)

    def _request(self, url: str, since_ms: int, after: int) -> Request:
        filters = [{"propertyName": self.property, "operator": "GTE", "value": str(since_ms)}]
        if self.until_ms is not None:
            filters.append({"propertyName": self.property, "operator": "LT", "value": str(self.until_ms)})
        body = {
            "filterGroups": [{"filters": filters}],
            "sorts": [{"propertyName": self.property, "direction": "ASCENDING"}],
            "properties": list(self.properties),
            "limit": self.limit,
            "after": after,
            "_since_ms": since_ms,
        }
        return Request("POST", url, None, body=body, cursor=str(since_ms))


def epoch_millis_of(value: Any) -> int:
    """A HubSpot datetime (ISO 8601 or epoch milliseconds) in epoch milliseconds."""
    text = str(value)
    if text.isdigit():
        return int(text)
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


@dataclass(frozen=True)
class Parent:
    """The records of another stream that a child stream is requested once per.

    `fields` names the values bound from each parent record (name -> dotted path); a record missing
    one is skipped, and records binding the same values make one request. `keep(record, params)`
    (params: the child's resolved params, e.g. its time window) picks the parents worth a request.
    """

    stream: Stream
    fields: dict[str, str]
    keep: Callable[[dict, Mapping[str, Any]], bool] | None = None


@dataclass(frozen=True)
class Stream:
    name: str
    path: str
    primary_key: str
    paginator: Paginator
    record_path: str | None  # key of the records list in the body; None when the body is the list
    cursor_field: str | None = None  # dotted path in each item of its change (or creation) time
    params: dict[str, Any] = field(default_factory=dict)
    incremental: Incremental | None = None  # how to ask for what changed since a cursor
    record_selector: str | None = None  # dotted path of the record inside each item (wrapped items)
    cursor_parser: Callable[[Any], int] = epoch_seconds
    # False when the cursor field is a creation time (Stripe `created`): a full load then cannot tell
    # how far changes reach, so its cursor becomes the time the load started.
    cursor_is_change_time: bool = True
    newest_first: bool = False  # item order within the stream, for "latest version wins" ties
    contract: dict[str, str] = field(default_factory=dict)  # field -> kind checked per record (contract.py)
    # Called with (fetcher, base_url, records) to add what the change feed omits (HubSpot associations).
    enrich: Callable[[Fetcher, str, list[dict]], list[dict]] | None = None
    # Request the stream once per combination of these parents' records (see the module doc).
    # A param value may be a callable of no arguments, evaluated when the stream runs (`now`).
    parents: tuple[Parent, ...] = ()
    # Read at most this often (seconds): a run sooner after the last read skips the stream, unless it
    # is a full refresh, a backfill (start_cursor) or forced. For aggregates whose fan-out costs a
    # request per parent record (usage per customer), where every 15 minutes would be too many.
    refresh_every_s: int | None = None


@dataclass(frozen=True)
class Connector:
    name: str
    streams: tuple[Stream, ...]
    # credentials -> static auth headers, or an httpx.Auth that signs each request (NetSuite TBA)
    auth: Callable[[dict[str, str]], dict[str, str] | httpx.Auth]

    def stream(self, name: str) -> Stream:
        return next(s for s in self.streams if s.name == name)

    def fetcher(self, credentials: dict[str, str], **kwargs) -> Fetcher:
        return Fetcher(self.auth(credentials), **kwargs)


def run_stream(fetcher: Fetcher, base_url: str, stream: Stream) -> Iterator[Page]:
    """Yield every page of `stream`, one response at a time (memory stays one page)."""
    if any(callable(v) for v in stream.params.values()):
        stream = replace(stream, params={k: v() if callable(v) else v for k, v in stream.params.items()})
    if stream.parents:
        yield from _run_children(fetcher, base_url, stream)
        return
    request: Request | None = stream.paginator.first(base_url.rstrip("/") + stream.path, stream)
    while request is not None:
        body, headers, items = _fetch_page(fetcher, request, stream)
        records = _select(items, stream.record_selector, request)
        if stream.enrich is not None and records:
            records = stream.enrich(fetcher, base_url, records)
        yield Page(records, request.full_url, [_cursor(stream, item) for item in items])
        request = stream.paginator.next(request, body, items, headers)


def _run_children(fetcher: Fetcher, base_url: str, stream: Stream) -> Iterator[Page]:
    """Run `stream` once per combination of its parents' bindings, each record tagged with its binding."""
    bindings = [_bindings(fetcher, base_url, parent, stream.params) for parent in stream.parents]
    for combination in itertools.product(*bindings):
        values = {name: value for binding in combination for name, value in binding}
        child = replace(
            stream,
            path=stream.path.format_map({k: quote(v, safe="") for k, v in values.items()}),
            params={k: v.format_map(values) if isinstance(v, str) else v for k, v in stream.params.items()},
            parents=(),
        )
        for page in run_stream(fetcher, base_url, child):
            for record in page.records:
                for name, value in values.items():
                    record.setdefault(name, value)
            yield page


def _bindings(
    fetcher: Fetcher, base_url: str, parent: Parent, params: Mapping[str, Any]
) -> list[tuple[tuple[str, str], ...]]:
    """The distinct (name, value) bindings of `parent`'s records that `keep` accepts, in first-seen order."""
    seen: dict[tuple[tuple[str, str], ...], None] = {}
    for page in run_stream(fetcher, base_url, parent.stream):
        for record in page.records:
            if parent.keep is not None and not parent.keep(record, params):
                continue
            values = tuple((name, dig(record, path)) for name, path in parent.fields.items())
            if all(v is not None and v != "" for _, v in values):
                seen.setdefault(tuple((n, str(v)) for n, v in values), None)
    return list(seen)


def _fetch_page(fetcher: Fetcher, request: Request, stream: Stream) -> tuple[Any, httpx.Headers, list[dict]]:
    """Fetch one page; a body without a list at `record_path` is retried, then fails loudly."""
    for _ in range(MALFORMED_PAGE_ATTEMPTS):
        body, headers = fetcher.fetch(
            request.method,
            request.url,
            cursor=request.cursor,
            params=request.params,
            json=_wire_body(request.body),
            headers=request.headers,
        )
        if stream.record_path is None:
            records = body
        else:
            records = body.get(stream.record_path) if isinstance(body, dict) else None
        if isinstance(records, list) and all(isinstance(r, dict) for r in records):
            return body, headers, records
    raise SourceError(
        request.full_url, request.cursor, 200, f"malformed page: no list at {stream.record_path!r}"
    )


def _select(items: list[dict], selector: str | None, request: Request) -> list[dict]:
    """Unwrap each item to its record (`{"customer": {...}}` -> `{...}`); a wrapper without one fails."""
    if selector is None:
        return items
    records = [dig(item, selector) for item in items]
    for record in records:
        if not isinstance(record, dict):
            raise SourceError(
                request.full_url, request.cursor, 200, f"malformed page: item without {selector!r}"
            )
    return records


def _wire_body(body: Any) -> Any:
    """The request body as sent: keys starting with `_` are the paginator's own notes."""
    if isinstance(body, dict):
        return {k: v for k, v in body.items() if not k.startswith("_")}
    return body


def _cursor(stream: Stream, item: dict) -> int | None:
    if not stream.cursor_field:
        return None
    value = dig(item, stream.cursor_field)
    if value is None:
        return None
    try:
        return stream.cursor_parser(value)
    except (TypeError, ValueError, OverflowError):
        return None


def dig(record: dict, dotted: str) -> Any:
    value: Any = record
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value
