"""Simulated hardware: the bead microscope model, the sim camera and focus stage."""
