"""``fedcredit audit wire``: the leak scanner of recorded wire transcripts.

:mod:`~fedcredit.audit_wire.scan` checks every value of ``RUN/wire.jsonl`` against the wire's
allow-list and searches it for a data file's labels, feature values and IDs;
:mod:`~fedcredit.audit_wire.targets` builds what is searched for from the file,
:mod:`~fedcredit.audit_wire.orders` the row orders the run held the rows in, and
:mod:`~fedcredit.audit_wire.search` reads a payload every way a leak could have written it.
Runs on the data owner's machine; nothing is sent anywhere. May import ``federation``,
``protocols`` and ``server`` (a run's checkpoint settings); never ``clients``.
"""
