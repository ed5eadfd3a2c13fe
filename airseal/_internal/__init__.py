"""Plumbing shared by every Airseal package: not API.

Atomic file writes (:mod:`.atomic`), the SQLite migration runner (:mod:`.migrations`), the
command-line entry ladder (:mod:`.cli`) and the ``--version`` constant (:mod:`.version`). Nothing
here imports ``trustroot``, ``media``, ``appliance``, ``agent`` or ``tui`` (an import contract):
each of them may build on it.
"""
