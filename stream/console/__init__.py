"""The care-team console (vitalstream console)."""
