"""The ``fedcredit`` command line (typer): one module per command group, assembled in ``main``.

May import anything of ours: it is part of the composition root.
"""
