"""Server-rendered pages: member page, till and console grow here."""
