"""Figures: the course's plotting style and its figure functions (class colours, saved and shown PNGs;
feature-space panels; method bars and budget curves). Imports nothing else of helpers."""
