"""How good the current model is, and when to stop: estimates from the labels people give anyway.

``accuracy``: the model's accuracy on the data with a 90% interval; ``stopping``: the stabilizing-predictions
signal; ``projection``: the labels a target accuracy still needs.
"""
