"""The HTTP API (``schemalog serve``): FastAPI routes over the application layer (service/app/).

app.py builds the application (one store for its lifetime, the change feed, the error handlers, the
request log); auth.py the bearer-token dependency and the role each route requires; problems.py the
RFC 9457 problem documents every error becomes; feed.py the server-sent change feed; routes/ the
resources under /v1. Nothing here holds logic of its own: parse the request, call service/app, render.
"""
