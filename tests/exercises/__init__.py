"""Gradient-check exercises: derive a backward pass, check it against central differences (see README.md here)."""
