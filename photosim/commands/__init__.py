"""The ``photosim`` commands, one module each; each defines ``register(sub, common)``.

``common`` is the parent parser carrying ``--library`` and ``--device`` (defined once, in
:mod:`photosim.cli`); a command sets ``func`` to a callable taking the parsed args and
returning an exit code. Modules must import heavy things (torch, Qt) inside ``func``
only. ``_common`` holds what the commands share (opening the library, printing paths,
argument types) and is no command.
"""
