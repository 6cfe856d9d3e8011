"""Everything that talks to Kafka: client config and builders, admin, callbacks, error kinds,
the group source and bounded ranges, lag, the schema registry client.

The only package that imports confluent_kafka. May import: core, codec, policy, config, errors.
"""
