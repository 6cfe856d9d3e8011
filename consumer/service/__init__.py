"""The long-running process: the one assembler for `run` and `replay`, the worker loop, policy
watch, reporting, logs.

May import every package but cli; never confluent_kafka directly (that is kafka/'s job: client
types are named through consumer.kafka.clients).
"""
