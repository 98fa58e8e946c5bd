"""A study from plan to experiment folder: the plan, the options, the driver, the environment record."""
