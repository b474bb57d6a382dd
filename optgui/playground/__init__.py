"""The playground tab: optimizers racing on 2-D surfaces (controller, plots, overlays,
step inspector, 3-D view, and the headless renderer the command line shares)."""
