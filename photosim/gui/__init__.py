"""The photosim desktop app (PySide6): gallery, similar-photos panel, drag-and-drop queries.

Widgets only render models and forward the user's intent. Every engine call is a job of
:class:`photosim.gui.service.LibraryService` (the widgets and dialogs get the service,
never the ``Library``) and runs in a worker thread, never on the GUI thread; the guard in
:mod:`photosim.gui.guard` makes a break of that rule fail the GUI tests.
"""
