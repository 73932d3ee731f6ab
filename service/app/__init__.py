"""The application layer: one function per use case, typed in and typed out (docs/ARCHITECTURE.md).

The command line, the HTTP API and the daemon call these and hold no logic of their own.
"""
