"""The long-running process: the assembler for `run` and `replay`, the worker loop, policy watch,
health, metrics, reporting, logs.

May import every package but cli; never confluent_kafka directly (that is kafka/'s job).
"""
