"""Business services (no Qt): each public function owns its unit of work and writes the audit event
in the same transaction as the change.

Capability packages, each depending only on those before it (checked by the import-linter contract
``capabilities`` in pyproject.toml):
core < customers, documents, exports < sales, validation < certificates < companies < intake, renewals,
audit_pack, integrity, demo.
"""
