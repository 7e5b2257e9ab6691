"""The PySide6 desktop app: main window, Container Panel, logs viewer (the only package that imports Qt widgets)."""
