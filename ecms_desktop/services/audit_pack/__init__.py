"""Audit packs: everything a state auditor asks for, in one folder and one zip, and checking one later."""
