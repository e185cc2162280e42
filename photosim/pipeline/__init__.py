"""The library's work: embedding photos, scanning folders, switching models, grouping
duplicates. Used through :class:`photosim.Library`; nothing here imports Qt."""
