"""What we may do with a contact: consent, opt-outs (退订) and personal-data rights (PIPL)."""
