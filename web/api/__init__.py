"""The REST API under ``/api/v1`` (docs/api.md): its own FastAPI application, mounted
(web/api/app.py) by :func:`partnercast.web.app.create_app`, so that its OpenAPI document
(``/api/v1/openapi.json``, browsable at ``/api/v1/docs``) describes the API and nothing
else of the site.

A router per resource (web/api/<resource>.py); what they share: auth.py (Bearer tokens,
roles, the rate limit per token), conventions.py (cursor pagination, ETag/If-Match,
Idempotency-Key), rows.py (one partner or contact written as an import row),
web/problems.py (every error an RFC 9457 problem document).
"""
