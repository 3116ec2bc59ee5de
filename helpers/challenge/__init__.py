"""The challenge: prediction of a folder of chips and the submission files (results.csv), with their
checks (submission, predict). Built on settings, datasets and the method."""
