"""Flower ClientApps: the bank node (and later the credit-center data node)."""
