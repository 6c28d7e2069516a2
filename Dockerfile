# The revsync image for docker-compose.yml: Airflow's official image (same Airflow and Python as
# requirements.txt) with revsync's pinned requirements and the package itself (plugins/ + sandbox/).
FROM apache/airflow:3.3.2-python3.11

COPY --chown=airflow:root requirements.txt pyproject.toml README.md /opt/revsync/
COPY --chown=airflow:root plugins /opt/revsync/plugins
COPY --chown=airflow:root sandbox /opt/revsync/sandbox
COPY --chown=airflow:root dbt_project /opt/revsync/dbt_project
COPY --chown=airflow:root expectations /opt/revsync/expectations
RUN pip install --no-cache-dir -r /opt/revsync/requirements.txt -e /opt/revsync
