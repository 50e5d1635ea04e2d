"""The ground every capability stands on: the database and its schema, the audit trail with its record
digests and anchors, typed errors, business settings, the records of a certificate the services hand
each other (read by the validation engine below the certificate service), finding the company a
command names, reading the files and tables users name, what each field can hold, expiry dates, and the
JSON texts that are hashed."""
