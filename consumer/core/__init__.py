"""The pure core: records, the batch pipeline, judgement (one meaning of "changed", the verdict
cache), the impact report, dead-letter records, samples.

May import: consumer.errors, consumer.codec, consumer.policy. No I/O: no confluent_kafka,
prometheus_client, time or os.environ (tests/unit/test_layering.py checks).
"""
