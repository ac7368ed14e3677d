"""The shared kernel: engines, transactions, settings, errors, vocabulary, audit, time."""
