"""Measurements of CNN Lab from outside the package (see README.md here)."""
