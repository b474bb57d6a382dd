"""The vanishing-gradient lab tab: its settings panel, training plots and the client of
the training worker."""
