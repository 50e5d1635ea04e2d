"""The intake inbox at the desk: its pane and the dialogs of its actions."""
