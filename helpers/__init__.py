"""The course's package. The top level holds only the commands, `python -m helpers.<command>` (course,
compare, sweep, predict, slides, student, results_report), each a few lines that call its wing. The
subpackages are the wings; each imports only from the wings lower in this list (tests/test_layout.py):

    lessons      what the notebooks call: set-up, audit, evaluation, embeddings, explorers
    evidence     baselines at matched budgets, the comparison, the sweep, verdicts, speed
    publishing   the runner, reports, slides, student copies, one-line errors
    challenge    predicting a folder of chips, the submission files
    method       model, losses, samplers, loader, training, stages, TTA, inference, metrics, runs
    datasets     built-in sets, MAVOC folders, augmentation
    settings     config and profiles, paths, catalog
    figures      the plotting style and figure functions

docs/architecture.md names every module of every wing.
"""
