"""Scores and tiers: rules as data, signals, scoring SQL, the tier state machine, placement."""
