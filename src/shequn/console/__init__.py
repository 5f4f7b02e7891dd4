"""Console users, sessions and logins: the people who run a brand from the browser, and the
agents and members who use the portal on their phones."""
