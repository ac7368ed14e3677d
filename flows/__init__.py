"""Entry points that drive ``crm``: Prefect flows, the ``qunflow`` CLI and the web app."""
