"""Who our contacts are: identities and their normalization, tags, first-touch attribution."""
