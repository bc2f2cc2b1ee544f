"""A job's life on the mesh: intake (seal, split, replicate) and release (unlock, decrypt)."""
