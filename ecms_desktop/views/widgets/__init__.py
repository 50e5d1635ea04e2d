"""Small widgets and helpers every window uses: dates, file dialogs that never touch the database's
files, the help overlay, images, the reason dialog, the status strip, the theme, the wheel guard and
the error presenter."""
