"""Spreadsheets and CSV files that are safe to open: the one writer of every export."""
