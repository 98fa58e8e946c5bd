"""Analysis of finished runs: summaries over seeds, statistics against a baseline, agreement across backends."""
