"""Backends of the ports: one module per backend."""
