"""Master side of the OmniBoxes test double."""
