"""The REST API: Flask blueprints over the loyalty domain."""
