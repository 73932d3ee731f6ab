"""The API's resources: system.py (/healthz, /v1/feed, /v1/verify, /v1/audit), streams.py (/v1/streams),
fleet.py (/v1/databases)."""
