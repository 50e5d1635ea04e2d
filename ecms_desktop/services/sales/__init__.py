"""Sales: the ERP's invoice lines, which certificate covers each (determination), the exposure report,
reprocessing, filing periods, and the exemption-status feed to the ERP.

* ``transaction_import``: importing the ERP's invoice lines.
* ``determination``: the pure engine deciding which certificate covers a sale, and why.
* ``candidates``: the certificates that may cover a customer's sales in a state, loaded and indexed.
* ``determination_records``: a determination as stored, with its evidence snapshot and audit exposure.
* ``determination_run``: the bulk run deciding every imported line that has no determination yet.
* ``exposure``: the exposure report (two measures, never added together) and the sales behind a row.
* ``exposure_workbook``: the exposure report as an Excel workbook.
* ``reprocessing``: applying a certificate to a customer's past sales, with corrections for filed periods.
* ``determination_service``: ``DeterminationService``, the determination use cases of the GUI and the CLI.
* ``periods``: filing periods, and which returns are filed.
* ``exemption_feed``: the exemption status of customers, sent to the ERP.
"""
