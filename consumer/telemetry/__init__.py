"""What the process tells its operators: metrics, the health snapshot and its HTTP server, and
throttled warnings. Shared by kafka/, delivery/ and service/, so it sits below all three.

May import: core, errors, prometheus_client and the standard library.
"""
