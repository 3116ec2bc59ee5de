"""Publishing: the headless runner (papermill), the reports, the slide decks, the student copies, and the
commands' shared one-line error handling (cli). They handle notebooks and files, never a model's numbers.
Built on settings, datasets and method."""
