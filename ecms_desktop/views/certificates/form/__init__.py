"""The certificate edit form (see ``form.py`` for how its layers fit together)."""

from ecms_desktop.views.certificates.form.fields import UnreadableInput, status_badge_style
from ecms_desktop.views.certificates.form.form import CertificateForm

__all__ = ["CertificateForm", "UnreadableInput", "status_badge_style"]
