"""The renewal loop: the plan, the e-mail, the request packets, and the returned forms read back."""
