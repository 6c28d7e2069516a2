"""Suite for sync.erp_changes: the NetSuite writes the push DAG sends (one row per change)."""

from __future__ import annotations

from datetime import datetime

from revsync.quality.suites import change_references, sql_check, table_expectations

TABLE = "sync.erp_changes"
KEY = "idempotency_key"
DEPENDS_ON = "depends_on_idempotency_key"

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

NOT_NULL = [
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
]

# where each record type written from billing comes from: (canonical mart, its column, this table's)
CANONICAL_OBJECTS = {
    "customer": ("canonical.customers", "stripe_customer_id", "target_external_id"),
    "salesOrder": ("canonical.subscriptions", "subscription_id", "source_id"),
    "invoice": ("canonical.invoices", "stripe_invoice_id", "source_id"),
    "customerPayment": ("canonical.payments", "stripe_charge_id", "target_external_id"),
    "creditMemo": ("canonical.credit_notes", "stripe_credit_note_id", "source_id"),
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
    # a wrong shape or a duplicate key stops the whole push; a bad row is held back, the rest goes
    return [
        *table_expectations(
            COLUMNS,
            KEY,
            now,
            policy="quarantine",
            not_null=NOT_NULL,
            enums={**ENUMS, "sequence": [1, 2, 3, 4]},
            non_negative=["amount"],
            currencies=["currency"],
            minor_units={"amount": "currency"},
            happened=["source_changed_at"],
        ),
        *change_references(TABLE),
        sql_check(
            "a change that depends on another names one in this change set",
            "prerequisite_in_change_set",
            "select * from {batch} where depends_on_idempotency_key is not null and "
            f"depends_on_idempotency_key not in (select idempotency_key from {TABLE})",
            "quarantine",
            column="depends_on_idempotency_key",
        ),
        sql_check(
            "each record type's source object exists in its canonical mart",
            "source_in_canonical_object",
            "select * from {batch} where source_system = 'stripe' and ("
            + " or ".join(
                f"(record_type = '{record_type}' and {field} not in "
                f"(select {column} from {mart} where {column} is not null))"
                for record_type, (mart, column, field) in CANONICAL_OBJECTS.items()
            )
            + ")",
            "quarantine",
            column="source_id",
        ),
    ]
