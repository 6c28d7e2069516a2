"""Incremental strategies: each rewrites a stream into its vendor's "what changed since" request.

`Incremental.changes(stream, since, until)` returns a derived `Stream` (other path, params, paginator,
record selector, cursor field) that the same paging engine runs; `since`/`until` are epoch seconds,
`since` already moved back by the lookback. The records land in the same raw table as a full load's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo

from revsync.connectors.base import (
    HubSpotSearchWindow,
    Stream,
    StripeCursor,
    ZendeskExportCursor,
    ZendeskTimeExport,
    epoch_seconds,
    iso_datetime,
)
from revsync.connectors.http import Fetcher, SourceError

ZENDESK_EXPORT_MIN_AGE_S = 61  # Zendesk refuses a start_time less than a minute in the past


class Incremental:
    def changes(self, stream: Stream, since: int, until: int | None) -> Stream:
        raise NotImplementedError


@dataclass(frozen=True)
class StripeEvents(Incremental):
    """Stripe has no updated-since filter: read `/v1/events` (kept 30 days) of the stream's object and
    land each event's `data.object`, the object as it was at the event."""

    types: tuple[str, ...]  # event types or `prefix.*` patterns
    object: str  # `data.object.object` the stream holds (guards against over-broad patterns)

    def changes(self, stream: Stream, since: int, until: int | None) -> Stream:
        params: dict = {"types[]": list(self.types), "created[gte]": since}
        if until is not None:
            params["created[lt]"] = until
        return replace(
            stream,
            path="/v1/events",
            params=params,
            paginator=StripeCursor(limit=100),
            record_path="data",
            record_selector="data.object",
            cursor_field="created",
            cursor_parser=epoch_seconds,
            cursor_is_change_time=True,
            newest_first=True,
            enrich=_only_object(self.object),
        )


def _only_object(kind: str):
    def keep(fetcher: Fetcher, base_url: str, records: list[dict]) -> list[dict]:
        return [r for r in records if r.get("object") == kind]

    return keep


@dataclass(frozen=True)
class HubSpotSearch(Incremental):
    """CRM search on `hs_lastmodifieddate` (ascending, re-windowed before 10k results). Search results
    carry no associations, so streams that need them read them from the v4 associations batch API."""

    properties: tuple[str, ...]
    association: tuple[str, str] | None = None  # (to object type, v3 association type label)
    property: str = "hs_lastmodifieddate"

    def changes(self, stream: Stream, since: int, until: int | None) -> Stream:
        pager = HubSpotSearchWindow(
            self.property, since * 1000, None if until is None else until * 1000, self.properties
        )
        return replace(
            stream,
            path=f"{stream.path}/search",
            params={},
            paginator=pager,
            record_path="results",
            cursor_field="updatedAt",
            cursor_parser=iso_datetime,
            enrich=self._associations(stream) if self.association else None,
        )

    def _associations(self, stream: Stream):
        from_type = stream.path.rstrip("/").rsplit("/", 1)[-1]
        to_type, label = self.association

        def enrich(fetcher: Fetcher, base_url: str, records: list[dict]) -> list[dict]:
            url = f"{base_url.rstrip('/')}/crm/v4/associations/{from_type}/{to_type}/batch/read"
            ids = [str(r["id"]) for r in records if r.get("id") is not None]
            body = fetcher.request("POST", url, json={"inputs": [{"id": i} for i in ids]})
            if not isinstance(body, dict) or not isinstance(body.get("results"), list):
                raise SourceError(url, None, 200, "malformed associations batch response")
            linked = {
                str(item["from"]["id"]): [str(to["toObjectId"]) for to in item.get("to", [])]
                for item in body["results"]
            }
            for record in records:
                targets = linked.get(str(record.get("id")))
                if targets:
                    record["associations"] = {
                        to_type: {"results": [{"id": t, "type": label} for t in targets]}
                    }
            return records

        return enrich


@dataclass(frozen=True)
class ZendeskExport(Incremental):
    """Zendesk incremental exports: cursor-based for tickets and users, time-based for organizations."""

    name: str
    cursor_based: bool = True

    def changes(self, stream: Stream, since: int, until: int | None) -> Stream:
        # The export has no end bound; records past `until` land now rather than next run.
        start = min(since, int(time.time()) - ZENDESK_EXPORT_MIN_AGE_S)
        if self.cursor_based:
            path, pager = f"/api/v2/incremental/{self.name}/cursor.json", ZendeskExportCursor()
        else:
            path, pager = f"/api/v2/incremental/{self.name}.json", ZendeskTimeExport()
        return replace(
            stream,
            path=path,
            params={"start_time": max(start, 0)},
            paginator=pager,
            record_path=self.name,
        )


@dataclass(frozen=True)
class SuiteQLModified(Incremental):
    """SuiteQL with `lastmodifieddate` >= since (< until), in the account's time zone."""

    zone: tzinfo
    column: str = "lastmodifieddate"

    def changes(self, stream: Stream, since: int, until: int | None) -> Stream:
        query = dict(stream.params)
        conditions = [query["where"]] if query.get("where") else []
        conditions.append(f"{self.column} >= {self._literal(since)}")
        if until is not None:
            conditions.append(f"{self.column} < {self._literal(until)}")
        query["where"] = " AND ".join(conditions)
        return replace(stream, params=query)

    def _literal(self, epoch: int) -> str:
        wall = datetime.fromtimestamp(epoch, self.zone).strftime("%Y-%m-%d %H:%M:%S")
        return f"TO_TIMESTAMP('{wall}', 'YYYY-MM-DD HH24:MI:SS')"


@dataclass(frozen=True)
class ParamSince(Incremental):
    """The list itself filtered by a "changed since" query parameter (Chargebee `updated_at[after]`,
    Freshdesk `updated_since`), as epoch seconds or ISO 8601."""

    param: str
    iso: bool = False
    exclusive: bool = False  # `after` excludes the bound itself: ask from one second earlier

    def changes(self, stream: Stream, since: int, until: int | None) -> Stream:
        bound = max(since - self.exclusive, 0)
        value = datetime.fromtimestamp(bound, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if self.iso else bound
        return replace(stream, params={**stream.params, self.param: value})


@dataclass(frozen=True)
class TimeWindow(Incremental):
    """Aggregates asked for a `[start, end)` time range (Stripe meter event summaries): ask for whole
    `grain_s` buckets (UTC) from `since` up to the one holding `until` (or now), so that every bucket
    comes back whole and keeps its id. The records carry no change time: the stream's cursor becomes
    the time the window was read to (load.plan_stream), and the lookback re-reads the last bucket."""

    start_param: str = "start_time"
    end_param: str = "end_time"
    grain_s: int = 86_400

    def changes(self, stream: Stream, since: int, until: int | None) -> Stream:
        end = int(time.time()) if until is None else until
        params = {
            **stream.params,
            self.start_param: floor_to(max(since, 0), self.grain_s),
            self.end_param: ceil_to(end, self.grain_s),
        }
        return replace(stream, params=params, cursor_is_change_time=False)


def floor_to(epoch: int, grain_s: int) -> int:
    return epoch // grain_s * grain_s


def ceil_to(epoch: int, grain_s: int) -> int:
    """The end of the bucket holding `epoch` (a bucket starting at `epoch` ends one grain later)."""
    return floor_to(epoch, grain_s) + grain_s
