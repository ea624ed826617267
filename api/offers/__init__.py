"""Offers, their coupons and code batches (staff scope `offers`)."""
