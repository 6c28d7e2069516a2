"""revsync extract DAGs (`extract_<source>`), generated from the connector registry.

The logic lives in the revsync package (plugins/revsync/orchestration/extract.py); this file only
exposes the DAGs to Airflow's DAG processor. Nothing here touches a database, network or file.
"""

from revsync.orchestration.extract import build_extract_dags

globals().update(build_extract_dags())
