"""Suite for sync.erp_changes: the NetSuite writes the push DAG sends (one row per change)."""

from __future__ import annotations

from datetime import datetime

import great_expectations.expectations as gxe

from revsync.quality.currencies import iso_4217, minor_unit_violations
from revsync.quality.suites import column_types

TABLE = "sync.erp_changes"
KEY = "idempotency_key"

BLOCK = {"policy": "block"}
QUARANTINE = {"policy": "quarantine"}

COLUMNS = {
    "idempotency_key": "VARCHAR",
    "target": "VARCHAR",
    "record_type": "VARCHAR",
    "operation": "VARCHAR",
    "target_external_id": "VARCHAR",
    "target_internal_id": "VARCHAR",
    "customer_key": "VARCHAR",
    "sequence": "INTEGER",
    "depends_on_idempotency_key": "VARCHAR",
    "correlation_id": "VARCHAR",
    "currency": "VARCHAR",
    "source_changed_at": "TIMESTAMP",
    "source_id": "VARCHAR",
    "payload": "JSON",
    "amount": "DECIMAL(18,3)",
    "http_method": "VARCHAR",
    "http_path": "VARCHAR",
    "source_system": "VARCHAR",
    "payload_hash": "VARCHAR",
    "reason": "VARCHAR",
}

ENUMS = {
    "target": ["netsuite"],
    "record_type": ["customer", "salesOrder", "invoice", "customerPayment", "creditMemo"],
    "operation": ["create", "close"],
    "http_method": ["PUT", "PATCH"],
    "source_system": ["stripe", "netsuite"],
    "reason": [
        "customer_missing_in_erp",
        "subscription_missing_in_erp",
        "erp_contract_without_active_subscription",
        "invoice_missing_in_erp",
        "payment_status_mismatch",
        "credit_note_missing_in_erp",
        "not_yet_synced",
    ],
}


def build(now: datetime) -> list:
    # schema and key: a wrong shape or a duplicate key stops the whole push
    expectations: list = [
        gxe.ExpectTableColumnsToMatchSet(column_set=list(COLUMNS), exact_match=True, meta=BLOCK)
    ]
    expectations += column_types(COLUMNS, BLOCK)
    expectations += [
        gxe.ExpectColumnValuesToBeUnique(column=KEY, meta=BLOCK),
        gxe.ExpectColumnValuesToNotBeNull(column=KEY, meta=BLOCK),
    ]
    # row-level content: a bad row is held back, the rest goes
    for column in (
        "target",
        "record_type",
        "operation",
        "customer_key",
        "correlation_id",
        "source_id",
        "payload",
        "payload_hash",
        "http_method",
        "http_path",
        "source_system",
        "reason",
    ):
        expectations.append(gxe.ExpectColumnValuesToNotBeNull(column=column, meta=QUARANTINE))
    expectations += [
        gxe.ExpectColumnValuesToBeInSet(column=c, value_set=v, meta=QUARANTINE) for c, v in ENUMS.items()
    ]
    expectations += [
        gxe.ExpectColumnValuesToBeInSet(column="sequence", value_set=[1, 2, 3, 4], meta=QUARANTINE),
        gxe.ExpectColumnValuesToBeBetween(column="amount", min_value=0, meta=QUARANTINE),
        gxe.UnexpectedRowsExpectation(
            description="amount carries no more decimals than its currency's minor unit",
            unexpected_rows_query="select * from {batch} where "
            + minor_unit_violations("amount", "currency"),
            meta={**QUARANTINE, "check": "amount_minor_unit_precision", "column": "amount"},
        ),
        gxe.ExpectColumnValuesToBeInSet(column="currency", value_set=iso_4217(), meta=QUARANTINE),
        gxe.ExpectColumnValuesToBeBetween(column="source_changed_at", max_value=now, meta=QUARANTINE),
    ]
    return expectations
