"""The operator's core: home, database, audit log, signers, intake, actions, export, CLI.

Everything the TUI does goes through here; nothing here knows about Textual.
"""
