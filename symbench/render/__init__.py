"""Rendering: rich tables, text exports and plots. Nothing here computes results."""
