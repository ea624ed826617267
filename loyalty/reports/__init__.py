"""Figures for finance and the programme's owners, computed set-based in the database."""
