"""Audit packs: everything a state auditor asks for, in one folder and one zip, and checking one later.

- ``service``: :class:`AuditPackService`, which makes a pack step by step (the dialog and
  ``ecms audit-pack`` use it).
- ``content``: what a pack holds: its file names and format, the selection, the gathered records.
- ``gather``: which certificates the selection takes in, read from the database, and the safe names
  of their files in the pack.
- ``period_status``: whether a certificate line was in force during the period, from its review history.
- ``sections``: the pack's tables (certificates, coverage, findings, permit checks, renewals, audit trail).
- ``workbook``: ``audit-pack.xlsx``.
- ``book_plan``: the PDF book's plan: the stored files probed in the document sandbox, grouped per
  customer and state.
- ``book_layout``: the pages of the book the program draws itself (cover, contents, summaries,
  appendices, placeholders).
- ``pdf``: ``audit-pack.pdf``: every page numbered and the book put together with the certificates' pages.
- ``manifest``: file hashes, ``manifest.json``, ``SHA256SUMS``, the zip, and the audit-trail event
  that records each pack (``PACK_EVENT``, ``find_pack_events``).
- ``verify``: checking a pack later against its manifest and the audit trail.
"""
