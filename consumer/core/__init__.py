"""The pure core: records, the batch pipeline, dead-letter records, impact judgement, samples.

May import: consumer.errors, consumer.codec, consumer.policy. No I/O: no confluent_kafka,
prometheus_client, time or os.environ (tests/unit/test_layering.py checks).
"""
