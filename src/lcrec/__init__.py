"""lcrec."""

from .registration import register_auto_classes

register_auto_classes()
