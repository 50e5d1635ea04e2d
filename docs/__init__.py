"""The user guide shipped with the program (installed as the package ``ecms_desktop.docs``: the guide
in Markdown and the screenshots it shows)."""
