"""Chatbot sessions in Redis for Django, after the Stealth framework's session model."""

__version__ = "0.1.0"
