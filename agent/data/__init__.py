"""Data files shipped with the agent: the systemd unit and udev rule (see README.md)."""
