"""Lessons: what the notebooks call (notebook set-up, audit, evaluation, embeddings, explorers).
Built on the method, the evidence and the figures."""
