"""Populations: a local fleet on one shared arena, fleets deployed to Akash, their children,
and the leaderboard that ranks their lives.

    arena_service   the shared arena (`forager arena up`, a fleet's arena thread), signal stops
    fleet           the local fleet: its arena, model server and members (`run_fleet`)
    supervisor      the members' processes: launched, restarted after a crash, stopped
    processes       child processes and the fleet's shared model server
    akash_fleet     one Akash deployment per agent, and the children they fund
    leaderboard     the lives, ranked, from their stores or from the agents over HTTP
"""
