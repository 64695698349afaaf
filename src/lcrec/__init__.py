"""lcrec."""
