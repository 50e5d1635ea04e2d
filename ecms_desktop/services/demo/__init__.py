"""Demo data: a realistic, reproducible book of certificates with drawn documents."""
