"""Dual activations: closed-form E[phi(u)phi(v)] and E[phi'(u)phi'(v)] per nonlinearity."""
