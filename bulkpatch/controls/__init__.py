"""The controls stage: four eyes on a plan (approval) and a trail of who did what (audit)."""
