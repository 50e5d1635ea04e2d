"""The Customers window, a customer's exemption matrix, and adding, editing and merging customers."""
