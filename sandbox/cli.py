"""`revsync sandbox …`: generate a world, serve it, age it, and read its ground truth.

Heavy imports (duckdb, fastapi, uvicorn) stay inside the commands so `revsync --help` stays fast.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="The vendor sandbox: a seeded company on Stripe, HubSpot, Zendesk and NetSuite-compatible APIs.",
    no_args_is_help=True,
    add_completion=False,
)


DEFAULT_WORLD = Path(".revsync/world")
WorldArgument = Annotated[Path, typer.Argument(help="The world's folder (world.duckdb, ground_truth.jsonl).")]


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def _parse_rates(rates: list[str]) -> dict[str, float]:
    from sandbox.world.plan import MISMATCH_TYPES

    parsed = {}
    for item in rates:
        kind, _, value = item.partition("=")
        if kind == "all":
            parsed.update(dict.fromkeys(MISMATCH_TYPES, 0.0))
            kinds = MISMATCH_TYPES
        elif kind in MISMATCH_TYPES:
            kinds = (kind,)
        else:
            known = ", ".join(MISMATCH_TYPES)
            _fail(f"--rate {item!r}: unknown mismatch type {kind!r}; use `all` or one of: {known}")
        try:
            rate = float(value)
        except ValueError:
            _fail(f"--rate {item!r}: the rate must be a number between 0 and 1, e.g. {kind}=0.02")
        if not 0 <= rate <= 1:
            _fail(f"--rate {item!r}: the rate must be between 0 and 1")
        parsed.update(dict.fromkeys(kinds, rate))
    return parsed


@app.command()
def generate(
    out: Annotated[Path, typer.Option(help="Folder to write the world into.")] = DEFAULT_WORLD,
    scale: Annotated[
        str, typer.Option(help="small (≈1k customers), medium (≈100k), large (≈1M) or a count.")
    ] = ("small"),
    seed: Annotated[int, typer.Option(help="Random seed: the same seed and scale give the same world.")] = 42,
    rate: Annotated[
        list[str] | None,
        typer.Option(
            help="Injection rate per mismatch type, e.g. invoice_missing_in_erp=0.03 (repeatable; "
            "`all=0` first to inject only the types you name). Default 0.02 of eligible records, "
            "at least 2 per type."
        ),
    ] = None,
) -> None:
    """Generate a seeded world (DuckDB) and its ground truth into OUT."""
    from sandbox.world.generator import generate as generate_world
    from sandbox.world.generator import parse_scale

    try:
        customers = parse_scale(scale)
    except ValueError as exc:
        _fail(str(exc))
    path = generate_world(
        out,
        customers,
        seed,
        rates=_parse_rates(rate or []),
        progress=lambda message: typer.echo(message, err=True),
    )
    typer.echo(str(path))


@app.command()
def serve(
    world: WorldArgument = DEFAULT_WORLD,
    faults: Annotated[
        str,
        typer.Option(
            help="Fault profile for all vendors (none|realistic|hostile) or per vendor, "
            "e.g. stripe=hostile,netsuite=realistic."
        ),
    ] = "none",
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default).")] = "127.0.0.1",
    port_base: Annotated[
        int | None,
        typer.Option(
            help="First of six consecutive ports (stripe, hubspot, zendesk, netsuite, chargebee, "
            "freshdesk); 0 picks free ports. Default: 12111-12116."
        ),
    ] = None,
) -> None:
    """Serve the vendor APIs on WORLD until interrupted; prints one line per vendor."""
    from sandbox.server.faults import parse_faults
    from sandbox.server.runner import PortTaken
    from sandbox.server.runner import serve as serve_world

    if not (world / "world.duckdb").exists():
        _fail(f"no world at {world}: create one with `revsync sandbox generate --out {world}`")
    try:
        parse_faults(faults)
    except ValueError as exc:
        _fail(str(exc))

    def ready(endpoints: dict) -> None:
        for vendor, info in endpoints.items():
            typer.echo(f"{vendor} {info['base_url']} {info['credential']}")
        sys.stdout.flush()

    try:
        asyncio.run(serve_world(world, host=host, port_base=port_base, faults=faults, on_ready=ready))
    except PortTaken as exc:
        _fail(str(exc))


@app.command()
def advance(
    minutes: Annotated[int, typer.Option(min=1, help="How far to age the world, in minutes.")] = 60,
    events: Annotated[
        int | None,
        typer.Option(min=0, help="Lifecycle events to apply (default: scaled to the world and time)."),
    ] = None,
    lose: Annotated[
        list[str] | None,
        typer.Option(help="Steer: lose exactly these downstream effects (mismatch types; `none`: none)."),
    ] = None,
    world: WorldArgument = DEFAULT_WORLD,
) -> None:
    """Age a running sandbox's world by MINUTES and apply a step of lifecycle events."""
    params: list[tuple[str, str | int]] = [("minutes", minutes)]
    if events is not None:
        params.append(("events", events))
    params += [("lose", kind) for kind in lose or ()]
    _admin_post(world, "advance", params)


@app.command()
def event(
    kind: Annotated[
        str, typer.Argument(help="signup, upgrade, cancellation, refund, recovery, payment_failure, renewal")
    ],
    lose: Annotated[
        list[str] | None,
        typer.Option(help="Downstream effects the integration loses (mismatch types, repeatable)."),
    ] = None,
    customer: Annotated[
        str | None, typer.Option(help="The customer ref (e.g. C0000050); default: seeded.")
    ] = None,
    world: WorldArgument = DEFAULT_WORLD,
) -> None:
    """Apply one lifecycle event to a running sandbox now: stage a business workflow (e.g. `event upgrade
    --lose invoice_missing_in_erp`)."""
    params: list[tuple[str, str | int]] = [("kind", kind), *(("lose", k) for k in lose or ())]
    if customer:
        params.append(("customer", customer))
    _admin_post(world, "event", params)


def _admin_post(world: Path, path: str, params: list) -> None:
    import httpx

    from sandbox.server.runner import read_endpoints

    try:
        endpoints = read_endpoints(world)
    except FileNotFoundError as exc:
        _fail(str(exc))
    base = endpoints["vendors"]["stripe"]["base_url"]
    response = httpx.post(f"{base}/__sandbox__/{path}", params=params, timeout=600)
    if response.status_code != 200:
        _fail(f"{path} failed ({response.status_code}): {response.text}")
    for key, value in response.json().items():
        typer.echo(f"{key}: {value}")


@app.command()
def truth(world: WorldArgument = DEFAULT_WORLD) -> None:
    """Print the world's injected discrepancies by type (detectable now / not yet)."""
    from datetime import UTC, datetime

    from sandbox.world.truth import counts_by_type, read_truth

    path = world / "ground_truth.jsonl"
    if not path.exists():
        _fail(f"no ground truth at {path}: generate a world first (`revsync sandbox generate --out {world}`)")
    try:
        entries = read_truth(path)
    except ValueError as exc:
        _fail(str(exc))
    now = counts_by_type(entries, as_of=datetime.now(UTC))
    every = counts_by_type(entries)
    typer.echo(f"{'mismatch_type':42s} {'detectable':>10s} {'pending':>8s}")
    for kind in every:
        typer.echo(f"{kind:42s} {now[kind]:>10d} {every[kind] - now[kind]:>8d}")
    typer.echo(f"{'total':42s} {sum(now.values()):>10d} {sum(every.values()) - sum(now.values()):>8d}")


@app.command()
def verify(
    world: WorldArgument = DEFAULT_WORLD,
) -> None:
    """Check WORLD's ground truth against the mismatch rules (the world must not be being served).

    Applies the rules of ARCHITECTURE.md with the generator's identity answer key; exits 1 when a
    discrepancy is in the truth but not in the data, or in the data but not in the truth.
    """
    import time

    import duckdb

    from sandbox.world.verify import compare, expected

    path = world / "world.duckdb"
    if not path.exists():
        _fail(f"no world at {world}: create one with `revsync sandbox generate --out {world}`")
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.IOException as exc:
        _fail(f"cannot open {path} ({exc}); stop the sandbox serving it first")
    now = int(time.time())
    report = compare(con, now)
    typer.echo(f"{len(expected(con, now))} discrepancies detectable now")
    for kind, problems in report.items():
        typer.echo(f"{kind}: missed {problems['missed'][:5]}, unexpected {problems['unexpected'][:5]}")
    if report:
        raise typer.Exit(1)
    typer.echo("consistent: the rules find exactly the ground truth")


@app.command()
def score(
    truth: Annotated[Path, typer.Option(help="The world's ground_truth.jsonl.")] = DEFAULT_WORLD
    / "ground_truth.jsonl",
    warehouse: Annotated[
        str,
        typer.Option(
            help="The DuckDB warehouse file dbt built, or the SQLAlchemy URL of a PostgreSQL warehouse "
            "(dbt --target postgres)."
        ),
    ] = ".revsync/warehouse.duckdb",
    as_of: Annotated[
        str | None,
        typer.Option(help="ISO 8601 UTC time to score at; default: the mismatches' detected_at."),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 1 unless precision and recall are 1.00 for every type.")
    ] = False,
) -> None:
    """Compare the warehouse's mismatches with the ground truth detectable at the time, per type.

    Reads mismatch_history when it exists, else mismatches; matches on (mismatch_type,
    anchor_system, anchor_id) and prints precision and recall per type.
    """
    from datetime import datetime

    from revsync.score import format_score
    from revsync.score import score as score_warehouse
    from revsync.warehouse.state import is_postgres

    if not truth.exists():
        _fail(f"no ground truth at {truth}")
    if not is_postgres(warehouse) and not Path(warehouse).exists():
        _fail(f"no warehouse at {warehouse}")
    when = None
    if as_of is not None:
        try:
            when = datetime.fromisoformat(as_of.replace("Z", "+00:00"))
        except ValueError:
            _fail(f"--as-of {as_of!r}: not an ISO 8601 time")
    try:
        result = score_warehouse(truth, warehouse if is_postgres(warehouse) else Path(warehouse), when)
    except (LookupError, ValueError) as exc:
        _fail(str(exc))
    typer.echo(format_score(result))
    if strict and not result.perfect:
        raise typer.Exit(1)
