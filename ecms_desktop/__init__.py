"""ECMS Desktop: sales-tax exemption certificate management that stands up in a state audit."""

__version__ = "0.1.0"
