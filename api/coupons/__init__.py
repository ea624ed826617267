"""Coupons by code, members' wallets and the rewards catalogue."""
