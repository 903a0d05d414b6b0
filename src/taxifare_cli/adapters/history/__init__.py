"""Where workflow runs are remembered."""
