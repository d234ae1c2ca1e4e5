"""Readers of the previous formats of the model file (format 1)."""
