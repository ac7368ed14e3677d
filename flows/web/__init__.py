"""The web app: the sales workspace and manager pages, QR sign-up pages, the lead webhook."""
