"""Launchers that run both sides in Flower's simulation engine (horizontal and vertical).

May import anything of ours: the only place that wires ``clients`` and ``server`` together.
"""
