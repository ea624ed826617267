"""Offers, coupons and the rewards catalogue."""
