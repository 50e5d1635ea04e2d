"""Validation: the rules-driven engine with its stored runs, permit checks, name matching."""
