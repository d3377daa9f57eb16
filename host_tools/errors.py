class UserError(Exception):
    """A mistake in what the user asked for: reported as one sentence, without a traceback."""
