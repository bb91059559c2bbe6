"""The engine: applies batches of input events to PostgreSQL, exactly once in effect.

``process_batch`` is the one way effects happen, whether the events came from Kafka, a
replay, or the staff terminal.
"""
