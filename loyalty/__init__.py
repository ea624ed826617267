"""The loyalty domain: members, cards, the points ledger, sales. Free of Flask."""
