"""The method the course teaches: the Shake-Shake model, losses, samplers, the seeded loader, the training
loop and its stages, budgets, TTA, checkpoints, inference, cached predictions, metrics, devices and
precision, and the run folders (runs). Built on settings and datasets."""
