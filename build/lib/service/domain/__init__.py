"""Domain rules: plain functions and small objects that raise domain errors, never HTTP ones."""
