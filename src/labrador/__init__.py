"""labrador: the LAB method for teaching language models knowledge and skills."""

__version__ = "0.1.0"
