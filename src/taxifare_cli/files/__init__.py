"""Files on this machine: atomic writes and raw ride CSV. Neutral ground for services and adapters."""
