"""The version both command lines print for ``--version``.

A constant rather than ``importlib.metadata.version("airseal")``: that lookup imports
``importlib.metadata`` and ``email`` and scans the installed distributions, about half of the
agent's ``--version`` start-up (and the agent starts on every USB insertion).
tests/_internal/test_version.py keeps it equal to pyproject.toml's ``[project] version`` and to
the installed distribution's.
"""

VERSION = "0.1.0"
