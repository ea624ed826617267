"""The REST API (/api/v1): one package per concept, each with `views.py` (a flask-smorest
blueprint: parse, call one service, dump) and `schemas.py` (the request and response shapes)."""
