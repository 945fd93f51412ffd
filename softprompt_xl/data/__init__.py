"""Data: sources, tasks, and the loaders of the two training stages."""
