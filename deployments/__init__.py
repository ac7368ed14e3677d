"""Prefect deployments of Qunflow's flows: serve.py (one machine), prefect.yaml (scale out)."""
