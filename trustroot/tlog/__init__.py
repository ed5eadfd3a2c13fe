"""Transparency-log formats and proofs, pure and I/O-free.

- :mod:`.merkle`: RFC 6962 / RFC 9162 hashing, inclusion and consistency proofs (generation over
  any source of complete-subtree hashes, and verification).
- :mod:`.tiles`: the C2SP tlog-tiles layout (paths, and node hashes read out of tiles).
- :mod:`.checkpoint`: C2SP signed-note checkpoints, signed and verified with the log key.
- :mod:`.entries`: Rekor v1 entry bodies (``hashedrekord`` / ``dsse`` 0.0.1), the signed entry
  timestamp (SET) and the bundle's ``tlogEntries`` object, with a verifier for all of it.
- :mod:`.rekor_api`: the Rekor v1 REST shapes (``LogEntry``, ``LogInfo``, proposed entries) both
  ways, and the check of an entry a Rekor returned.

Everything takes bytes and returns values or raises :class:`LogProofError`; the appliance's log
store and the agent are the shells that read and write.
"""
