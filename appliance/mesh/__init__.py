"""The edge mesh: peers and liveness, placement, replication, anti-entropy sync, repair."""
