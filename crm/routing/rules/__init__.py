"""Scoring and routing rules: the versioned rules file, its model and its loader."""

from crm.routing.rules.loader import DEFAULT_RULES, configured_rules, load_rules, parse_rules
from crm.routing.rules.model import Rules

__all__ = ["DEFAULT_RULES", "Rules", "configured_rules", "load_rules", "parse_rules"]
