"""The photosim desktop app (PySide6): gallery, similar-photos panel, drag-and-drop queries.

Widgets only render models and forward the user's intent; every engine call runs in
:class:`photosim.gui.service.LibraryService` worker threads, never on the GUI thread.
"""
