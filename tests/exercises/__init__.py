"""The exercises: derive a backward pass, compute a quantity of the lectures, or write the
backward graph walk, and let minivae check it (README.md here says how)."""
