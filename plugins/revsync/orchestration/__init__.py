"""Airflow wiring: DAG factories and task bodies that call the revsync package (no logic of their own)."""
