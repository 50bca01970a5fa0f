"""Node side of the OmniBoxes test double."""
