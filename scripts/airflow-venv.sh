#!/usr/bin/env bash
# Airflow in its own venv (default .airflow-venv/), for the DAG tests in tests/e2e/test_airflow_dag.py.
# Airflow pins a large tree of its own, so it stays out of the project's .venv; the locked
# requirements (orchestrate/airflow-requirements.txt) play the role of Airflow's constraints file.
# Re-running is a no-op while the lock is unchanged. Needs .venv (for uv): `make venv` first.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${AIRFLOW_VENV:-.airflow-venv}
LOCK=orchestrate/airflow-requirements.txt
UV=.venv/bin/uv
STAMP="$VENV/.installed-$(sha256sum "$LOCK" | cut -c1-16)"
if [ -e "$STAMP" ]; then
    exit 0
fi
start=$(date +%s)
rm -rf "$VENV"
"$UV" venv --quiet --python "$(.venv/bin/python -c 'import sys; print(sys.executable)')" "$VENV"
"$UV" pip install --quiet --python "$VENV/bin/python" -r "$LOCK"
touch "$STAMP"
echo "airflow-venv: apache-airflow $("$VENV/bin/python" -c "from importlib.metadata import version; print(version('apache-airflow'))") in $VENV ($(( $(date +%s) - start )) s)"
