"""Fault injection against real node processes, and the checker that judges what the clients saw."""
