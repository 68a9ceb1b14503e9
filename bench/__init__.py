"""Parley's benchmark harness: ``python -m bench run | workers | admin`` (see bench/README.md)."""
