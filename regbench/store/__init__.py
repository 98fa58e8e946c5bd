"""The experiment-folder format: its layout, the one writer, the readers of every format written so far,
run identity."""
