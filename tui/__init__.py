"""The operator's terminal UI: Textual screens over `appliance` services, nothing more."""
