"""Data files shipped with the appliance (read with importlib.resources)."""
