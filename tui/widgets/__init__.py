"""Widgets shared by the screens: dialogs, the navigation bar, tiles and charts."""
