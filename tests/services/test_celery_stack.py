"""The distributed stack without Docker: the same `revsync demo` round on Airflow 3 with the
CeleryExecutor, its metadata in the machine's PostgreSQL and Redis as the broker, tasks spread over two
Celery worker processes; its figures equal the embedded (LocalExecutor, SQLite) run's on the same world."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
import sqlalchemy as sa

pytestmark = [pytest.mark.services, pytest.mark.timeout(2400)]

WORKERS = 2
REDIS_DB = 11  # a database of its own: a stale queue from an aborted run must not feed these workers


@pytest.fixture
def metadata_db(new_postgres_database):
    """A new, empty PostgreSQL database for Airflow's metadata (migrated by the demo), dropped after."""
    with new_postgres_database("revsync_airflow") as url:
        yield url


@pytest.fixture
def broker(redis_url):
    parts = urlsplit(redis_url)
    url = urlunsplit(parts._replace(path=f"/{REDIS_DB}"))
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


@pytest.fixture
def celery_run(demo_runner, metadata_db, broker, tmp_path):
    run = demo_runner(
        tmp_path / "celery",
        "--executor",
        "CeleryExecutor",
        "--metadata-url",
        metadata_db,
        "--broker-url",
        broker,
        "--celery-workers",
        str(WORKERS),
        "--rounds",
        "1",
    )
    return run, metadata_db


def test_a_round_on_celery_workers_gives_the_embedded_runs_results(celery_run, embedded_demo):
    run, metadata_db = celery_run
    (celery,) = run.result["rounds"]
    embedded = embedded_demo.result["rounds"][0]
    assert celery["extracted"] == embedded["extracted"]
    assert celery["mismatches"] == embedded["mismatches"] and sum(celery["mismatches"].values()) > 0
    assert celery["exceptions"] == embedded["exceptions"]
    for dag_id in ("push_erp", "push_entitlements"):
        for figure in ("acknowledged", "dead_lettered", "held"):
            assert celery["pushed"][dag_id][figure] == embedded["pushed"][dag_id][figure], (dag_id, figure)
    assert celery["pushed"]["push_erp"]["acknowledged"] > 0

    # the runs are in PostgreSQL, the reconcile run started by the extracts' Assets
    engine = sa.create_engine(metadata_db, poolclass=sa.NullPool)
    try:
        with engine.connect() as con:
            runs = dict(
                con.execute(
                    sa.text("select dag_id, count(*) from dag_run where state = 'success' group by dag_id")
                ).all()
            )
            triggered = con.execute(
                sa.text("select run_type from dag_run where dag_id = 'reconcile'")
            ).scalar_one()
    finally:
        engine.dispose()
    assert runs["reconcile"] == 1 and runs["push_erp"] == 1 and runs["extract_stripe"] == 1
    assert triggered == "asset_triggered"

    # both worker processes executed tasks
    logs = run.home / "airflow" / "logs" / "services"
    received = {n: (logs / f"celery-worker-{n}.log").read_text().count("] received") for n in (1, 2)}
    assert all(count > 0 for count in received.values()), received
