"""The Flask application that serves api/ and web/: the factory (server.app), and the request
plumbing both use (server.core)."""
