"""Qunflow's CRM: the domain rules, the schema and the services. Never imports Prefect."""
