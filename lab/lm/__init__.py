"""Language models on the text languages: the ``lab lm`` command, its runs, exact evaluation."""
