"""Customers, matched by their normalised customer number."""
