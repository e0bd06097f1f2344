"""Each party's protocol steps as plain functions over its own data, and the summation scheme.

The node apps in ``clients/`` only unpack a request, call a step here and pack the reply.
May import the other sub-packages of ``federation`` and ``protocols``; no flwr.
"""
