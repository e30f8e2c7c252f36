"""Label noise: features, patient-grouped out-of-sample probabilities and cleanlab findings."""
