"""The command line: parsing, rendering, exit codes. No business logic here."""
