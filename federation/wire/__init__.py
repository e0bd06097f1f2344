"""The wire: message types, step names, record keys, request/reply builders for both apps.

The one place in ``federation`` that imports flwr; ``clients`` and ``server`` import it and
repeat no literal. May import ``federation`` and ``protocols``.
"""
