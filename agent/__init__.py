"""The offline endpoint agent: import, verify three times, ask, run, report back."""
