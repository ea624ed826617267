"""The member's page in the browser: signing in with a code emailed to them, and their points."""
