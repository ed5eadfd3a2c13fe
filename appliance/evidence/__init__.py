"""Evidence for auditors: one self-contained folder that shows what was signed, by whom, under
which policy, what the log and the endpoints said, and how to check each claim offline.

One concept per module: :mod:`.model` the data shapes, :mod:`.collect` reads the appliance (the
only module here that touches the database and the home), :mod:`.claims` turns signed objects
into files and the shell commands that re-check them, :mod:`.build` assembles the evidence
(``evidence.json``, ``VERIFY.md``), :mod:`.report_html` renders the report, and :mod:`.write`
puts it on disk atomically. Everything between collecting and writing is pure.
"""
