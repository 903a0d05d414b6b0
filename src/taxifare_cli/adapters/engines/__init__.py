"""Workflow engines: what runs a month's steps."""
