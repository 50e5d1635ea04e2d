"""Receiving certificate files at the desk."""
