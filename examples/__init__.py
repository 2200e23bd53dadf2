"""Example handler modules for the quick start."""
