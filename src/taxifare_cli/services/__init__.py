"""Use cases: one function per thing a user asks for. They never print."""
