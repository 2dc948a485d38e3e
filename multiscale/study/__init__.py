"""Studies built on the evaluation package: the mass scan of tools/study_mass_scan.sh."""
