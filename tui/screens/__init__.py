"""The app's screens: one module per screen, each over `appliance` services."""
