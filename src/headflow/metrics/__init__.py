"""Pure metric functions, each naming the reference implementation it matches (LSE: `lse`)."""
