"""The learning loop: the worker that retrains (and its policy of when), the round it runs, and its records."""
