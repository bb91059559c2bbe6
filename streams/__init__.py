"""The Kafka side of contract v1: topics, message models, parsing, keys, broker settings.

- ``streams.topics``: topic names and the message type each carries.
- ``streams.messages``: every message model, and which topic carries which.
- ``streams.parsing``: bytes to messages (never raising), dead letters, keys, records.
- ``streams.broker``: the FastStream broker and aiokafka client settings.
- ``streams.asyncapi``: the AsyncAPI document, generated from the models.
"""
