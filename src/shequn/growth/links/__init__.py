"""Share links and channel codes: a short code per member and target, its QR code and poster,
the clicks on it, and the channel (code and `state`) that brought each member, which its
referral touches record (their scene is the code)."""
