"""`revsync push`, `revsync outbox` and `revsync replay`: the push DAGs' work from a shell, the outbox's
state, and the dead-letter replay (financial writes need --approved-by)."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from revsync.extract_cli import SANDBOX_HELP, _config, _endpoints
from revsync.quality_cli import WAREHOUSE_HELP

TARGETS_HELP = "Targets to push: netsuite (erp_changes), zendesk (entitlement_changes); default both."


def _warehouse(warehouse: str | None) -> str:
    from revsync.warehouse.connect import warehouse_path

    return warehouse or str(warehouse_path())


def _targets(names: list[str] | None):  # noqa: ANN202 - list[Target], imported lazily
    from revsync.push.targets import TARGETS

    chosen = names or list(TARGETS)
    unknown = [n for n in chosen if n not in TARGETS]
    if unknown:
        raise typer.BadParameter(f"unknown target(s) {unknown}; choose from {', '.join(TARGETS)}")
    return [TARGETS[n] for n in chosen]


def push(
    targets: Annotated[list[str] | None, typer.Argument(help=TARGETS_HELP)] = None,
    sandbox: Annotated[Path | None, typer.Option("--sandbox", help=SANDBOX_HELP)] = None,
    warehouse: Annotated[str | None, typer.Option(help=WAREHOUSE_HELP)] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the writes a push would send, per type; send nothing.")
    ] = False,
    concurrency: Annotated[
        int | None, typer.Option(help="Requests in flight at most (default: the target's limit).")
    ] = None,
    run_id: Annotated[str | None, typer.Option(help="Run id for the audit log (default cli-<time>).")] = None,
) -> None:
    """Push the validated change sets to their targets, as the push DAGs do, exactly once.

    Enqueues validated.<change set> into revsync_state.outbox, then delivers it; progress is logged.
    Exits 3 when a target is in maintenance or unreachable (rerun later: nothing is lost), 1 on other
    errors."""
    from revsync.push.delivery import DeliverySettings, PushConfigError, TargetUnavailable
    from revsync.push.run import NothingValidated, plan
    from revsync.push.run import push as run_push

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    store = _warehouse(warehouse)
    endpoints = _endpoints(sandbox) if sandbox is not None else None
    run_id = run_id or f"cli-{time.strftime('%Y%m%dT%H%M%S')}"
    settings = DeliverySettings(concurrency=concurrency)
    status = 0
    for target in _targets(targets):
        try:
            if dry_run:
                typer.echo(json.dumps(plan(store, target)))
                continue
            config = _config(target.source, endpoints)
            queued, report = run_push(store, target, config.base_url, config.credentials, run_id, settings)
        except NothingValidated as exc:
            typer.echo(f"push {target.name}: {exc}", err=True)
            status = max(status, 1)
            continue
        except TargetUnavailable as exc:
            typer.echo(f"push {target.name}: {exc}; nothing is lost, rerun when it is back", err=True)
            status = max(status, 3)
            continue
        except PushConfigError as exc:
            typer.echo(f"push {target.name}: {exc}", err=True)
            status = max(status, 1)
            continue
        typer.echo(json.dumps({**queued, **report.summary()}))
        for letter in report.dead_letters[:20]:
            typer.echo(
                f"  dead letter {letter['record_type']} {letter['source_id']} "
                f"(customer {letter['customer_key']}): {letter['error']}",
                err=True,
            )
    if status:
        raise typer.Exit(code=status)


def outbox(
    warehouse: Annotated[str | None, typer.Option(help=WAREHOUSE_HELP)] = None,
    dead_letters: Annotated[
        bool, typer.Option("--dead-letters", help="List the dead letters (with the target's error).")
    ] = False,
    limit: Annotated[int, typer.Option(help="Rows listed at most.")] = 50,
) -> None:
    """Show the outbox: writes per target and state; with --dead-letters, the dead letters themselves."""
    from revsync.push.outbox import ensure_outbox, states
    from revsync.push.replay import dead_letters as list_dead_letters
    from revsync.push.targets import TARGETS
    from revsync.warehouse.state import state_engine, writer_lock

    store = _warehouse(warehouse)
    if dead_letters:
        for row in list_dead_letters(store, limit=limit):
            typer.echo(
                f"{row['idempotency_key']}  {row['target']} {row['record_type']} {row['source_id']} "
                f"customer={row['customer_key']} attempts={row['attempts']}: {row['last_error']}"
            )
        return
    engine = state_engine(store)
    try:
        with writer_lock(store), engine.begin() as con:
            ensure_outbox(con)
            for name in TARGETS:
                counts = {s: n for s, n in states(con, name).items() if n}
                typer.echo(f"{name}: {json.dumps(counts) if counts else 'empty'}")
    finally:
        engine.dispose()


def replay(
    keys: Annotated[list[str] | None, typer.Argument(help="Idempotency keys of the dead letters.")] = None,
    target: Annotated[str | None, typer.Option(help="All dead letters of this target.")] = None,
    record_type: Annotated[str | None, typer.Option(help="Only this record type (e.g. invoice).")] = None,
    error_like: Annotated[
        str | None, typer.Option(help="Only dead letters whose error contains this.")
    ] = None,
    approved_by: Annotated[
        str | None,
        typer.Option(help="Finance approver: required to replay invoices, payments, credit memos."),
    ] = None,
    sandbox: Annotated[Path | None, typer.Option("--sandbox", help=SANDBOX_HELP)] = None,
    warehouse: Annotated[str | None, typer.Option(help=WAREHOUSE_HELP)] = None,
    no_deliver: Annotated[
        bool, typer.Option("--no-deliver", help="Only mark them replayed; the next push sends them.")
    ] = False,
) -> None:
    """Replay chosen dead letters: mark them replayed (audited) and deliver them."""
    from revsync.push.delivery import deliver
    from revsync.push.replay import ApprovalRequired
    from revsync.push.replay import replay as run_replay
    from revsync.push.targets import TARGETS

    store = _warehouse(warehouse)
    run_id = f"replay-{time.strftime('%Y%m%dT%H%M%S')}"
    try:
        chosen = run_replay(
            store,
            keys=keys,
            target=target,
            record_type=record_type,
            error_like=error_like,
            approved_by=approved_by,
            actor="cli",
            run_id=run_id,
        )
    except (ApprovalRequired, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from None
    typer.echo(f"replay: {len(chosen)} dead letters marked replayed")
    if no_deliver or not chosen:
        return
    endpoints = _endpoints(sandbox) if sandbox is not None else None
    for name in sorted({r["target"] for r in chosen}):
        config = _config(TARGETS[name].source, endpoints)
        report = deliver(store, TARGETS[name], config.base_url, config.credentials, run_id)
        typer.echo(json.dumps(report.summary()))
