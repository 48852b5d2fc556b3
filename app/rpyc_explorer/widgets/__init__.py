"""Reusable widgets: console, path bar, status light, log pane."""
