"""Reaching contacts: campaigns, the outbox, dispatch under the caps ledger, templates, channels."""
