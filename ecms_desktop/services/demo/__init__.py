"""Demo data: a realistic, reproducible book of certificates with drawn documents (the service, its
fixed reference data, permit numbers, the plans and their planner, the drawn documents and the files
made of them, and the bulk writer)."""
