"""The Qt GUI. Views call services; they never build queries or open sessions."""
