"""Sub-commands kept out of cli.py; each module defines ``register(sub, common)``.

``common`` is the parent parser carrying ``--library`` and ``--device``; a
command sets ``func`` to a callable taking the parsed args and returning an
exit code. Modules must import heavy things (torch, Qt) inside ``func`` only.
"""
