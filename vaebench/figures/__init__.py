"""One module per reproduced paper figure: runs, tidy CSV, plot, table."""
