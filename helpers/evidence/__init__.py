"""Evidence: baselines and ablations at matched budgets (experiments, rebalancing), the multi-seed
comparison and the budget sweep (compare, sweep), their verdicts, and the speed/size measurements.
Built on the method, the figures and publishing's cli."""
