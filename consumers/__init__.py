"""Kafka-facing processes: the worker, the outbox relay, the expiry scheduler, replay and
wallet sync."""
