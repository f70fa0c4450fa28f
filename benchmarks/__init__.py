"""``make bench``: rtkit's figures, each next to a baseline measured in the same run."""
