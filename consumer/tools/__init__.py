"""One-shot policy impact jobs, export and diff: read a file or a bounded topic range, print.

May import: core, codec, policy, config, kafka, errors (replay is a service: consumer/service/).
"""
