"""Declarative streams over one generic paging engine (after dlt's rest_api source).

A connector is a table of `Stream`s (name, path, primary key, cursor field, paginator, record path,
params); `run_stream` turns one stream into an iterator of `Page`s, each the records of one response
with the URL that served them and the cursor value they reach. Paginators know only their vendor's
paging protocol; the fetcher knows only HTTP and retries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from revsync.connectors.http import Fetcher, SourceError

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
    cursor_value: str | None


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
    """SuiteQL `limit`/`offset` over a query ordered by id; past `max_results` restart at `id > last`."""

    limit: int = 1000
    max_results: int = 100_000

    def first(self, url: str, stream: Stream) -> Request:
        return self._request(url, stream.params, None, 0)

    def next(self, request, body, records, headers):
        if not body.get("hasMore") or not records:
            return None
        offset = int(request.params["offset"]) + len(records)
        if offset + self.limit <= self.max_results:
            return replace(request, params={**request.params, "offset": offset})
        return self._request(request.url, request.body["_query"], str(records[-1]["id"]), 0)

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
class Stream:
    name: str
    path: str
    primary_key: str
    paginator: Paginator
    record_path: str | None  # key of the records list in the body; None when the body is the list
    cursor_field: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    incremental: str | None = None  # strategy name; full loads only for now
    record_selector: str | None = None  # dotted path of the record inside each item (wrapped items)


@dataclass(frozen=True)
class Connector:
    name: str
    streams: tuple[Stream, ...]
    auth: Callable[[dict[str, str]], dict[str, str]]  # credentials -> auth headers

    def stream(self, name: str) -> Stream:
        return next(s for s in self.streams if s.name == name)

    def fetcher(self, credentials: dict[str, str], **kwargs) -> Fetcher:
        return Fetcher(self.auth(credentials), **kwargs)


def run_stream(fetcher: Fetcher, base_url: str, stream: Stream) -> Iterator[Page]:
    """Yield every page of `stream`, one response at a time (memory stays one page)."""
    request: Request | None = stream.paginator.first(base_url.rstrip("/") + stream.path, stream)
    while request is not None:
        body, headers, items = _fetch_page(fetcher, request, stream)
        records = _select(items, stream.record_selector, request)
        yield Page(records, request.full_url, _cursor_value(stream, items, request))
        request = stream.paginator.next(request, body, items, headers)


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
    records = [_dig(item, selector) for item in items]
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


def _cursor_value(stream: Stream, records: list[dict], request: Request) -> str | None:
    """The highest cursor-field value on the page, else the paging position that fetched it."""
    if stream.cursor_field:
        values = [str(v) for r in records if (v := _dig(r, stream.cursor_field)) is not None]
        if values:
            return max(values)
    return request.cursor


def _dig(record: dict, dotted: str) -> Any:
    value: Any = record
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value
