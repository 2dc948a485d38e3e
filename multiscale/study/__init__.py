"""Studies built on the evaluation package: the mass scan (its workflow: workflow/Snakefile)."""
