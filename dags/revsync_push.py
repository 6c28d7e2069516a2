"""revsync push DAGs: `push_erp` and `push_entitlements` (scheduled on the validated change-set Assets)
and the manual `replay_dead_letters`.

The logic lives in the revsync package (plugins/revsync/orchestration/push.py); this file only exposes
the DAGs to Airflow's DAG processor: no database, network or warehouse at parse time.
"""

from revsync.orchestration.push import build_push_dag, build_replay_dag

push_erp = build_push_dag("netsuite")
push_entitlements = build_push_dag("zendesk")
replay_dead_letters = build_replay_dag()
