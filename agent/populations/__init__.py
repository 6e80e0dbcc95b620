"""Populations: a local fleet on one shared arena, fleets deployed to Akash, their children,
and the leaderboard that ranks their lives."""
