"""Training: the model of one run, the regularizers (components), fused training of many runs as one model,
and the rules both share (monitor)."""
