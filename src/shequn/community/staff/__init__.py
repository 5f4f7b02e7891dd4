"""The staff-account matrix: accounts, assignment by policy, handover on exit."""
