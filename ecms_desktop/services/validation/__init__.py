"""Validation: the rules-driven engine with its stored runs, permit checks, name matching.

* ``engine``: the pure engine (``ValidationEngine``), what it reads (``Subject``) and what it finds
  (``Finding``), with the rule ids and their severities.
* ``runs``: validation runs stored with the certificate in the caller's transaction, the approval gate,
  acknowledgements of warnings and findings accepted on import, ``ValidationResult``.
* ``service``: ``ValidationService``, the use cases with their own transactions: validating one
  certificate or many in batches, stored history, re-validation after a rules-pack change.
* ``permit_service``: checking that a purchaser held an active permit (registry snapshot, manual look-up,
  online service), every check recorded as evidence.
* ``name_match``: the one comparison of business names.
"""
