"""Airseal: signed software distribution into air-gapped networks.

Everything installs under this one name. The code lives in the repository's top-level folders and
is mapped here at build time (``[tool.setuptools] package-dir`` in pyproject.toml):
``airseal.trustroot`` (what we trust and how we check it), ``airseal.media`` (the on-media format),
``airseal.appliance`` (the operator's core and the ``airseal`` CLI), ``airseal.agent`` (the
endpoint) and ``airseal.tui`` (the terminal UI). In the repository, ``airseal/`` links to those
folders so that tools run from a checkout see the same names as an installation.
"""
