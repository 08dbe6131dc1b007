"""Recipes that regenerate the shipped fixtures, corpus and models (not installed)."""
