"""Values as error messages show them: short, however large the value."""


def short_repr(value, limit=80):
    """``repr(value)``, cut to ``limit`` characters (ending ``...`` if cut).

    Parameters
    ----------
    value : object
    limit : int, default=80

    Returns
    -------
    text : str

    Examples
    --------
    >>> from sk_keras_digits._messages import short_repr
    >>> short_repr("a" * 100, limit=12)
    "'aaaaaaaa..."
    """
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
