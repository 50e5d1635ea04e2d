"""Is the database still what the program wrote (ecms check), backup and restore."""
