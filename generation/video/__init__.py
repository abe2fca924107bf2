"""The ML side of generation: no Django in here. Heavy imports happen inside functions."""
