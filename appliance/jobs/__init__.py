"""A job's life on the mesh: intake (seal, split, replicate) and release (unlock, decrypt)."""

USER_X = 255  # Shamir point of the user's share; holders use 1, 2, 3, … (repair adds more)
