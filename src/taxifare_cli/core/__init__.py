"""Pure computation on DataFrames and arrays: no I/O, no settings."""
