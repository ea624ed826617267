"""What speaks a point-of-sale's language. For now: reading past transactions from CSV."""
