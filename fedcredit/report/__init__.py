"""``fedcredit report``: the self-contained HTML validation report of a run and its figures.

May import ``federation`` and ``protocols``; it reads a run folder, never a party's rows.
"""
