"""Sales: the ERP's invoice lines, which certificate covers each (determination), the exposure report,
reprocessing, filing periods, and the exemption-status feed to the ERP."""
