"""Face detection and landmarks (the `faces` stage builds on these)."""
