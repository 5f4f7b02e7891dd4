"""Leaders and role models (领): leaderboards, featured role models with their story, and
the lecturer roster."""
