"""Flower ServerApps and operator commands: coordinator workflows, checkpoints, reports, CLI."""
