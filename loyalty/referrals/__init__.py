"""Friend brings friend: referral codes and links, referrals and their fraud guards, rewards at
the friend's first qualifying purchase and their reversal, the funnel."""
