"""Vendor-shaped ids that encode the record's seq, so a paging cursor decodes without a lookup.

Stripe ids look like ``cus_0000q1kZpX3mRt``: a 7-char base-36 (lowercase) seq followed by 7 mixed-case
characters derived from the seq. The seq part alone is unique, so ids stay unique even when another
system stores them upper-cased (a benign difference the generator plants on purpose).

HubSpot, Zendesk and NetSuite use numeric ids: ``base + seq`` with a per-object base, so ids of
different object types do not collide and look like the vendors' own.
"""

from __future__ import annotations

import zlib

import numpy as np

_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SEQ_WIDTH = 7

STRIPE_PREFIX = {
    "stripe_products": "prod_",
    "stripe_prices": "price_",
    "stripe_customers": "cus_",
    "stripe_subscriptions": "sub_",
    "stripe_subscription_items": "si_",
    "stripe_invoices": "in_",
    "stripe_charges": "ch_",
    "stripe_credit_notes": "cn_",
    "stripe_usage_records": "mbur_",
    "stripe_events": "evt_",
}

NUMERIC_BASE = {
    "hubspot_companies": 10_000_000_000,
    "hubspot_contacts": 20_000_000_000,
    "hubspot_deals": 30_000_000_000,
    "zendesk_organizations": 360_000_000_000,
    "zendesk_users": 370_000_000_000,
    "zendesk_tickets": 0,
    "netsuite_subsidiaries": 0,
    "netsuite_customers": 1_000,
    "netsuite_sales_orders": 2_000_000,
    "netsuite_invoices": 4_000_000,
    "netsuite_customer_payments": 7_000_000,
    "netsuite_credit_memos": 9_500_000,
}


_MIX = 0x9E3779B97F4A7C15  # golden-ratio multiplier: spreads consecutive seqs over the tail space
_MASK = (1 << 64) - 1


def _salt(table: str) -> int:
    return zlib.crc32(table.encode()) * 0x100000001B3


def _chars(table: str, seqs: np.ndarray) -> np.ndarray:
    """(n, 14) uint8 array: base-36 seq digits then 7 base-62 tail digits, as ASCII codes."""
    seqs = seqs.astype(np.uint64)
    out = np.empty((len(seqs), 2 * _SEQ_WIDTH), dtype=np.uint8)
    b36 = np.frombuffer(_B36.encode(), dtype=np.uint8)
    b62 = np.frombuffer(_B62.encode(), dtype=np.uint8)
    rest = seqs.copy()
    for pos in range(_SEQ_WIDTH - 1, -1, -1):
        out[:, pos] = b36[(rest % 36).astype(np.intp)]
        rest //= 36
    with np.errstate(over="ignore"):
        mixed = (seqs * np.uint64(_MIX)) ^ np.uint64(_salt(table) & _MASK)
        mixed ^= mixed >> np.uint64(29)
    for pos in range(_SEQ_WIDTH, 2 * _SEQ_WIDTH):
        out[:, pos] = b62[(mixed % 62).astype(np.intp)]
        mixed //= 62
    return out


def stripe_ids(table: str, seqs: np.ndarray) -> np.ndarray:
    """Stripe-style ids for many seqs at once (numpy array of str), identical to `stripe_id`."""
    seqs = np.asarray(seqs)
    if len(seqs) and (seqs.min() < 1 or seqs.max() >= 36**_SEQ_WIDTH):
        raise ValueError("seq out of range for a Stripe id")
    body = _chars(table, seqs).view(f"S{2 * _SEQ_WIDTH}").ravel().astype(str)
    return np.char.add(STRIPE_PREFIX[table], body)


def stripe_id(table: str, seq: int) -> str:
    """The Stripe-style id of row `seq` of `table` (e.g. ``in_000002sA8fkQ2x``).

    The same arithmetic as `stripe_ids` on plain ints: numpy's per-call overhead dominated decoding one
    paging cursor per request.
    """
    if seq < 1 or seq >= 36**_SEQ_WIDTH:
        raise ValueError("seq out of range for a Stripe id")
    head, rest = [], seq
    for _ in range(_SEQ_WIDTH):
        rest, digit = divmod(rest, 36)
        head.append(_B36[digit])
    mixed = ((seq * _MIX) & _MASK) ^ (_salt(table) & _MASK)
    mixed ^= mixed >> 29
    tail = []
    for _ in range(_SEQ_WIDTH):
        mixed, digit = divmod(mixed, 62)
        tail.append(_B62[digit])
    return STRIPE_PREFIX[table] + "".join(reversed(head)) + "".join(tail)


def stripe_seq(table: str, object_id: str) -> int | None:
    """The seq an id of `table` encodes, or None when the id is not one of ours."""
    prefix = STRIPE_PREFIX[table]
    body = object_id[len(prefix) :]
    if not object_id.startswith(prefix) or len(body) != 2 * _SEQ_WIDTH:
        return None
    try:
        seq = int(body[:_SEQ_WIDTH], 36)
    except ValueError:
        return None
    if seq < 1 or seq >= 36**_SEQ_WIDTH:
        return None
    return seq if object_id == stripe_id(table, seq) else None


def numeric_id(table: str, seq: int) -> int:
    return NUMERIC_BASE[table] + seq


def numeric_seq(table: str, object_id: str | int) -> int | None:
    try:
        seq = int(object_id) - NUMERIC_BASE[table]
    except (TypeError, ValueError):
        return None
    return seq if seq >= 1 else None
