"""Main window, dialogs and panes."""
