"""revsync `reconcile` DAG: the dbt project as one task per model, scheduled on the raw Assets.

The logic lives in the revsync package (plugins/revsync/orchestration/reconcile.py); this file only
exposes the DAG to Airflow's DAG processor. It reads dbt's manifest.json (`make manifest` writes it)
and nothing else: no database, network or warehouse.
"""

from revsync.orchestration.reconcile import build_reconcile_dag

reconcile = build_reconcile_dag()
