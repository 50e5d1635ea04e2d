"""Business services (no Qt): each public function owns its unit of work and writes the audit event
in the same transaction as the change."""
