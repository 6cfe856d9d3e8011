"""Everything that talks to Kafka: client config and builders, admin, callbacks, error kinds,
the Source protocol and its two sources (the live group, a bounded range), bounded ranges for the
tools, lag, the message conversions at the client boundary, the faults slot, the schema registry
client.

The only package that imports confluent_kafka, with delivery/ (the producer's transactional API).
Client types are named elsewhere through kafka/clients.py. May import: core, codec, policy,
config, errors, and telemetry (the health, metrics and throttled warnings that the callbacks and
sources report to).
"""
