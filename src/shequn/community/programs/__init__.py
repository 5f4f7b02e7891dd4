"""Programs: N-day check-in challenges (make-up days and streak freezes within limits,
milestone rewards, a ranking, a completion certificate), courses with lessons, and
competitions with teams, rounds, scores and elimination."""
