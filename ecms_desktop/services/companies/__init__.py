"""Companies (the seller's legal entities): their registrations and branding, changes of their business
settings, and their own expiry policies (which recompute their certificates)."""
