"""Certificates: create, edit and review them (versions, expiry, company expiry policies), find them,
their history, the edit form's fields, and import from spreadsheets."""
