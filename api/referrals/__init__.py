"""Referrals: a member's code, link and funnel; the staff list, the programme's funnel and the
referral terms."""
