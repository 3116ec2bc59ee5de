"""Settings: the one source of truth for every setting (config and profiles/*.yaml), file locations
(paths) and the registry of notebooks and kernels (catalog). Imports nothing else of helpers."""
