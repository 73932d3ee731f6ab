"""The API's resources: system.py (/healthz, /v1/feed, /v1/verify, /v1/audit), streams.py (/v1/streams),
changesets.py (/v1/whoami, /v1/changesets, one changeset's page, approvals, rollout resume: what the web UI
reads), fleet.py (/v1/databases)."""
