"""Data: the built-in sets (synthetic_sar, digits_lt), the user's MAVOC-style folders (data_files, archive),
their augmentation (augment) and the one loader of every split (data). Built on settings."""
